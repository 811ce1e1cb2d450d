"""Every `whet` API command against a running `whet serve` over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.clients import Result, report_step, start_training, stepping, write_dataset
from support.model_folder import model_folder
from support.platform import use_ports

from whetstone.cli.main import main
from whetstone.cli.tokens import hash_token, load_tokens
from whetstone.client import MULTIPART_LIMIT_BYTES, Job
from whetstone.core.events import TrainingDevice
from whetstone.core.job import JobError, JobRecord, LogEntry, MetricPoint
from whetstone.core.layout import UPLOADS_ROOT, JobLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.runtime import get_platform
from whetstone.service.records import transition, update_job
from whetstone.settings import get_settings

MODEL = "qwen2.5-0.5b-instruct"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


pytestmark = pytest.mark.usefixtures("no_user_config")


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "train.jsonl")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(f"base_model: {MODEL}\nmethod: lora\ntraining:\n  epochs: 2\n")
    return path


def complete(job_id: str, archive: bytes = b"\x1f\x8bmodel") -> None:
    start_training(job_id)
    transition(get_platform(), job_id, JobStatus.COMPLETED)
    get_platform().blobs.put(JobLayout("local", job_id).model_archive, archive)


def fail(job_id: str) -> None:
    def change(job: JobRecord) -> JobRecord:
        error = JobError(code="oom", message="out of GPU memory; use qlora", step="training")
        return job.with_status(JobStatus.FAILED).model_copy(update={"error": error})

    update_job(get_platform(), job_id, change)


def create(whet: Callable[..., Result], config: Path, dataset: Path) -> str:
    result = whet("jobs", "create", str(config), str(dataset), "--json")
    assert result.code == 0, result.err
    return str(result.json()["job_id"])


class FailingOrchestrator:
    """A workflow whose every job fails as soon as it starts."""

    def start(self, job: JobRecord) -> None:
        fail(job.job_id)

    def stop(self, job: JobRecord) -> None:
        pass

    def pause(self, job: JobRecord) -> None:
        pass

    def resume(self, job: JobRecord) -> None:
        pass


# -- planning ---------------------------------------------------------------------------------


def test_models_prints_a_table_and_json(whet: Callable[..., Result]) -> None:
    table = whet("models", "--family", "qwen", "--max-params", "1")
    raw = whet("models", "--family", "qwen", "--json")

    assert table.code == 0 and table.out.splitlines()[0].split()[:3] == ["ID", "FAMILY", "PARAMS"]
    assert MODEL in table.out and "llama" not in table.out
    assert MODEL in [m["id"] for m in raw.json()]


def test_hardware_lists_every_gpu(whet: Callable[..., Result]) -> None:
    result = whet("hardware")
    assert result.code == 0 and "nvidia-t4" in result.out and "nvidia-h100" in result.out
    assert len(whet("hardware", "--json").json()["gpus"]) == 6


def test_requirements_lists_each_method(whet: Callable[..., Result]) -> None:
    result = whet("requirements", MODEL)
    assert result.code == 0
    assert all(method in result.out for method in ("lora", "qlora", "full", "prompt_tuning"))


def test_validate_hardware_exits_1_when_the_model_does_not_fit(
    whet: Callable[..., Result],
) -> None:
    fits = whet("validate-hardware", MODEL, "--gpu-type", "nvidia-a10g")
    too_big = whet("validate-hardware", "llama-3.3-70b-instruct", "--method", "full", "--json")

    assert fits.code == 0 and "fits:" in fits.out
    assert too_big.code == 1 and too_big.json()["fits"] is False


def test_estimate_takes_settings_from_a_config_file(
    whet: Callable[..., Result], tmp_path: Path
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"training": {"batch_size": 2}}))

    result = whet("estimate", MODEL, "--examples", "2000", "--epochs", "2", "--config", str(spec))
    raw = whet("estimate", MODEL, "--examples", "2000", "--json")

    assert result.code == 0 and "2,000 x 2 epochs" in result.out and "cost:" in result.out
    assert raw.json()["num_examples"] == 2000 and raw.json()["epochs"] == 3


def test_estimate_reads_method_epochs_and_gpu_from_the_config_and_flags_win(
    whet: Callable[..., Result], tmp_path: Path
) -> None:
    # Given a QLoRA, 7-epoch, H100 job config
    spec = tmp_path / "job.yaml"
    spec.write_text(
        f"base_model: {MODEL}\nmethod: qlora\ntraining:\n  epochs: 7\n"
        "hardware:\n  gpu_type: nvidia-h100\n"
    )

    # When it is estimated as it is, and with flags
    plain = whet("estimate", MODEL, "--examples", "100", "--config", str(spec), "--json")
    flagged = whet(
        "estimate", MODEL, "--examples", "100", "--config", str(spec), "--epochs", "2", "--json"
    )
    checked = whet("validate-hardware", MODEL, "--config", str(spec), "--method", "lora", "--json")

    # Then the config's settings count, and the flags override them
    assert (plain.json()["method"], plain.json()["epochs"]) == ("qlora", 7)
    assert plain.json()["gpu_type"] == "nvidia-h100"
    assert (flagged.json()["method"], flagged.json()["epochs"]) == ("qlora", 2)
    assert (checked.json()["method"], checked.json()["gpu_type"]) == ("lora", "nvidia-h100")


def test_estimate_says_first_that_the_model_does_not_fit_and_exits_1(
    whet: Callable[..., Result],
) -> None:
    result = whet("estimate", "llama-3.3-70b-instruct", "--method", "full", "--examples", "100")

    lines = result.out.splitlines()
    assert result.code == 1
    assert lines[0].startswith("does not fit:")
    assert lines[1].startswith("smallest configuration that fits:")


def test_requirements_accepts_a_local_folder_and_a_hub_id(
    whet: Callable[..., Result], tmp_path: Path
) -> None:
    local = whet("requirements", model_folder(tmp_path))
    hub = whet("requirements", "hf://Qwen/Qwen2.5-0.5B-Instruct")

    assert local.code == 0 and tmp_path.name in local.out, local.err
    assert hub.code == 0 and "Qwen2.5 0.5B Instruct" in hub.out


# -- datasets ---------------------------------------------------------------------------------


def test_validate_reports_a_good_dataset(whet: Callable[..., Result], dataset: Path) -> None:
    result = whet("validate", str(dataset))
    assert result.code == 0 and "valid:" in result.out and "alpaca" in result.out


def test_validate_exits_1_with_the_errors_of_a_bad_dataset(
    whet: Callable[..., Result], tmp_path: Path
) -> None:
    small = write_dataset(tmp_path / "small.jsonl", count=10)
    result = whet("validate", str(small))
    raw = whet("validate", str(small), "--json")

    assert result.code == 1 and "too_few_examples" in result.out
    assert raw.code == 1 and raw.json()["valid"] is False


# -- jobs -------------------------------------------------------------------------------------


def test_jobs_create_from_yaml_and_a_dataset(
    whet: Callable[..., Result], config: Path, dataset: Path
) -> None:
    human = whet("jobs", "create", str(config), str(dataset), "--name", "reverse")
    raw = whet("jobs", "create", str(config), str(dataset), "--json")

    assert human.code == 0 and "pending" in human.out and "reverse" in human.out
    job = raw.json()
    assert job["status"] == "pending" and job["spec"]["training"]["epochs"] == 2


def test_jobs_create_accepts_a_json_config_with_name_and_spec(
    whet: Callable[..., Result], tmp_path: Path, dataset: Path
) -> None:
    config = tmp_path / "job.json"
    config.write_text(json.dumps({"name": "named", "spec": {"base_model": MODEL}}))
    job = whet("jobs", "create", str(config), str(dataset), "--json").json()
    assert job["name"] == "named"


def test_jobs_create_refused_prints_the_servers_message_and_exits_1(
    whet: Callable[..., Result], tmp_path: Path, dataset: Path
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(f"base_model: {MODEL}\ntraining:\n  epochs: 0\n")

    result = whet("jobs", "create", str(config), str(dataset))

    assert result.code == 1 and result.out == ""
    assert "spec.training.epochs" in result.err and "validation_error" in result.err


def test_a_dataset_over_8_mb_takes_the_upload_flow(
    whet: Callable[..., Result], config: Path, tmp_path: Path
) -> None:
    big = write_dataset(tmp_path / "big.jsonl", count=2100, padding=4000)
    assert big.stat().st_size > MULTIPART_LIMIT_BYTES

    job = whet("jobs", "create", str(config), str(big), "--json").json()

    stored = get_platform().jobs.get(job["job_id"])
    assert stored is not None and stored.dataset.blob_key
    assert stored.dataset.blob_key.startswith(UPLOADS_ROOT)
    assert job["dataset"]["num_examples"] == 2100


def test_jobs_create_with_only_a_config_needs_a_dataset_source(
    whet: Callable[..., Result], config: Path, tmp_path: Path
) -> None:
    named = tmp_path / "s3.yaml"
    named.write_text(f"base_model: {MODEL}\ndataset:\n  source: s3://bucket/train.jsonl\n")

    missing = whet("jobs", "create", str(config))
    created = whet("jobs", "create", str(named), "--json")

    assert missing.code == 2 and "dataset" in missing.err
    assert created.code == 0 and created.json()["dataset"]["source"] == "s3://bucket/train.jsonl"


def test_usage_errors_exit_2(whet: Callable[..., Result], dataset: Path) -> None:
    assert whet("jobs", "list", "--status", "bogus").code == 2
    assert whet("jobs", "create", "/no/such/config.yaml", str(dataset)).code == 2
    assert whet("jobs", "create", str(dataset), "/no/such/data.jsonl").code == 2


def test_jobs_create_wait_shows_progress_and_exits_0_when_completed(
    whet: Callable[..., Result], config: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[Callable[[str], None]] = [
        start_training,
        lambda job_id: report_step(job_id, 50, 100, 1.2345),
        lambda job_id: transition(get_platform(), job_id, JobStatus.COMPLETED),
    ]
    monkeypatch.setattr(Job, "wait_between_polls", lambda self, seconds: events.pop(0)(self.job_id))

    result = whet("jobs", "create", str(config), str(dataset), "--wait", "--poll", "0")

    assert result.code == 0
    progress = [line for line in result.err.splitlines() if line.startswith("ftjob-")]
    assert [line.split()[1] for line in progress] == [
        "pending",
        "training",
        "training",
        "completed",
    ]
    assert "step 50/100" in progress[2] and "loss 1.2345" in progress[2]
    assert "ETA 1:30" in progress[2] and "cost $0.25" in progress[2]
    assert "completed" in result.out


def test_waiting_on_a_job_that_fails_exits_3(
    whet: Callable[..., Result], config: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_ports(monkeypatch, orchestrator=FailingOrchestrator())

    created = whet("jobs", "create", str(config), str(dataset), "--wait", "--json")
    job_id = created.json()["job_id"]
    again = whet("jobs", "wait", job_id)

    assert created.code == 3 and created.json()["status"] == "failed"
    assert again.code == 3 and "out of GPU memory" in again.err


def test_jobs_wait_on_a_cancelled_job_exits_3(
    whet: Callable[..., Result], config: Path, dataset: Path
) -> None:
    job_id = create(whet, config, dataset)
    whet("jobs", "stop", job_id)
    assert whet("jobs", "wait", job_id).code == 3


def test_waiting_on_a_job_paused_at_its_cost_cap_returns_5_with_why_and_what_next(
    whet: Callable[..., Result], config: Path, dataset: Path
) -> None:
    # Given a training job that paused at its cost cap
    job_id = create(whet, config, dataset)
    start_training(job_id)
    transition(get_platform(), job_id, JobStatus.PAUSING, "cost cap reached")
    transition(get_platform(), job_id, JobStatus.PAUSED, "cost cap reached: $5.00 of $5.00")

    # When someone waits on it, then the wait ends (it would never move on its own)
    waited = whet("jobs", "wait", job_id)

    assert waited.code == 5
    assert "cost cap reached" in waited.err and f"whet jobs resume {job_id}" in waited.err


def test_jobs_list_filters_and_prints_json(
    whet: Callable[..., Result], config: Path, dataset: Path
) -> None:
    first, second = create(whet, config, dataset), create(whet, config, dataset)
    whet("jobs", "stop", first)

    table = whet("jobs", "list")
    pending = whet("jobs", "list", "--status", "pending", "--json").json()
    limited = whet("jobs", "list", "--limit", "1", "--json").json()

    assert table.code == 0 and table.out.splitlines()[0].startswith("JOB ID")
    assert [j["job_id"] for j in pending] == [second]
    assert [j["job_id"] for j in limited] == [second]


def test_jobs_get_shows_a_job(whet: Callable[..., Result], config: Path, dataset: Path) -> None:
    job_id = create(whet, config, dataset)

    human = whet("jobs", "get", job_id)
    raw = whet("jobs", "get", job_id, "--json").json()

    assert human.code == 0 and job_id in human.out and "status:" in human.out
    assert raw["job_id"] == job_id and raw["status_history"][0]["status"] == "pending"


def test_jobs_get_and_list_show_the_device_a_job_ran_on_once_the_trainer_reports_it(
    whet: Callable[..., Result], config: Path, dataset: Path
) -> None:
    job_id = create(whet, config, dataset)
    asked = whet("jobs", "get", job_id).out
    update_job(
        get_platform(),
        job_id,
        lambda job: job.model_copy(update={"device": TrainingDevice(gpu_count=0)}),
    )

    shown = whet("jobs", "get", job_id).out
    listed = whet("jobs", "list").out

    assert _line(asked, "hardware").endswith("x nvidia-t4")
    assert _line(shown, "hardware").endswith(" cpu")
    assert _line(listed, job_id).split()[5] == "cpu"


def test_a_job_starting_its_trainer_reads_apart_from_a_model_deployment(
    whet: Callable[..., Result], config: Path, dataset: Path
) -> None:
    job_id = create(whet, config, dataset)
    for status in (JobStatus.PREPARING, JobStatus.DEPLOYING):
        transition(get_platform(), job_id, status)

    shown = whet("jobs", "get", job_id).out

    assert _line(shown, "status").endswith("deploying (starting trainer)")
    assert "deploying (starting trainer)" in whet("jobs", "list").out


def test_a_cancelled_job_shows_no_eta_and_a_second_stop_says_it_ended(
    whet: Callable[..., Result], config: Path, dataset: Path
) -> None:
    job_id = create(whet, config, dataset)
    update_job(
        get_platform(),
        job_id,
        lambda job: job.model_copy(
            update={"progress": job.progress.model_copy(update={"eta_seconds": 90.0})}
        ),
    )
    whet("jobs", "stop", job_id)

    shown = whet("jobs", "get", job_id).out
    again = whet("jobs", "stop", job_id)

    assert _line(shown, "ETA").split() == ["ETA:", "-"]
    assert again.code == 1 and "the job already ended (cancelled)" in again.err


def test_output_into_a_closed_pipe_ends_quietly(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given stdout is a pipe whose reader went away, as with `whet models | head -1`
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w", buffering=1) as closed_pipe:
        monkeypatch.setattr(sys, "stdout", closed_pipe)
        # When a command prints its table, Then it exits 0 without a traceback
        assert main(["models", "--url", server_url]) == 0


def _line(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def test_an_unknown_job_exits_1_with_the_servers_message(whet: Callable[..., Result]) -> None:
    result = whet("jobs", "get", "ftjob-missing")
    assert result.code == 1 and "no job 'ftjob-missing'" in result.err
    assert "job_not_found" in result.err


def test_jobs_logs_filters_by_source_and_level(
    whet: Callable[..., Result], config: Path, dataset: Path
) -> None:
    job_id = create(whet, config, dataset)
    get_platform().logs.append(
        job_id,
        [
            LogEntry(time=T0, source="build", level="info", message="built image"),
            LogEntry(time=T0, source="training", level="warning", message="loss spike"),
            LogEntry(time=T0, source="training", level="debug", message="batch 1"),
        ],
    )

    every = whet("jobs", "logs", job_id)
    training = whet("jobs", "logs", job_id, "--type", "training", "--level", "info")
    raw = whet("jobs", "logs", job_id, "--json", "--limit", "1")

    assert every.code == 0 and len(every.out.splitlines()) == 3
    assert training.out.strip().endswith("loss spike") and "built" not in training.out
    assert [json.loads(line)["message"] for line in raw.out.splitlines()] == ["built image"]


def test_jobs_logs_show_our_events_key_details_in_the_table(
    whet: Callable[..., Result], config: Path, dataset: Path
) -> None:
    # Given the platform's own events, whose details are structured fields
    job_id = create(whet, config, dataset)
    splits = {"train": 80, "validation": 15, "test": 5}
    get_platform().logs.append(
        job_id,
        [
            LogEntry(
                time=T0,
                source="training",
                level="info",
                message="training started",
                fields={"device": "cpu", "precision": "fp32"},
            ),
            LogEntry(
                time=T0,
                source="build",
                level="info",
                message="dataset prepared",
                fields={"splits": splits, "note": "x" * 500},
            ),
        ],
    )

    # When the logs are printed as a table, then each line carries its details inline
    lines = whet("jobs", "logs", job_id).out.splitlines()
    (started,) = [line for line in lines if "training started" in line]
    (prepared,) = [line for line in lines if "dataset prepared" in line]
    assert started.endswith("training started  [device=cpu precision=fp32]")
    assert 'splits={"train":80,"validation":15,"test":5}' in prepared
    assert "x" * 500 not in prepared and "…" in prepared  # a long value is cut


def test_jobs_logs_follow_ends_when_the_job_ends(
    whet: Callable[..., Result], config: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = create(whet, config, dataset)
    start_training(job_id)

    def log(message: str) -> Callable[[], None]:
        entry = LogEntry(time=T0, source="training", level="info", message=message)
        return lambda: get_platform().logs.append(job_id, [entry])

    def finish() -> None:
        log("saved model")()
        transition(get_platform(), job_id, JobStatus.COMPLETED)

    log("step 1")()
    monkeypatch.setattr(Job, "wait_between_polls", stepping([log("step 2"), finish]))

    result = whet("jobs", "logs", job_id, "--follow", "--poll", "0")

    assert result.code == 0
    assert [line.split("  ")[-1] for line in result.out.splitlines()] == [
        "step 1",
        "step 2",
        "saved model",
    ]


def test_jobs_metrics_prints_a_table_and_plots_a_png(
    whet: Callable[..., Result], config: Path, dataset: Path, tmp_path: Path
) -> None:
    job_id = create(whet, config, dataset)
    points = [MetricPoint(name="loss", step=s, value=3 - s / 10, time=T0) for s in range(1, 11)]
    points += [MetricPoint(name="eval_loss", step=s, value=3 - s / 12, time=T0) for s in (5, 10)]
    points += [
        MetricPoint(name="learning_rate", step=s, value=2e-4 * s / 10, time=T0)
        for s in range(1, 11)
    ]
    get_platform().jobs.put_metrics(job_id, points)
    png = tmp_path / "loss.png"

    table = whet("jobs", "metrics", job_id, "--plot", str(png))
    raw = whet("jobs", "metrics", job_id, "--names", "loss", "--max-step", "3", "--json").json()

    assert table.code == 0
    assert table.out.splitlines()[0].split() == ["STEP", "LOSS", "EVAL_LOSS", "LEARNING_RATE"]
    assert len(table.out.splitlines()) == 11
    assert png.read_bytes().startswith(b"\x89PNG")
    assert [p["step"] for p in raw["series"]["loss"]] == [1, 2, 3]


def test_jobs_stop_then_delete(whet: Callable[..., Result], config: Path, dataset: Path) -> None:
    job_id = create(whet, config, dataset)

    stop = whet("jobs", "stop", job_id, "--json")
    delete = whet("jobs", "delete", job_id)
    gone = whet("jobs", "get", job_id)

    assert stop.code == 0 and stop.json()["status"] == "cancelled"
    assert delete.code == 0 and f"deleted {job_id}" in delete.out
    assert gone.code == 1


def test_deleting_a_running_job_is_refused(
    whet: Callable[..., Result], config: Path, dataset: Path
) -> None:
    job_id = create(whet, config, dataset)
    start_training(job_id)
    result = whet("jobs", "delete", job_id)
    assert result.code == 1 and "job_active" in result.err


def test_jobs_download_writes_the_archive(
    whet: Callable[..., Result], config: Path, dataset: Path, tmp_path: Path
) -> None:
    job_id = create(whet, config, dataset)
    early = whet("jobs", "download", job_id, "-o", str(tmp_path / "early.tar.gz"))
    archive = b"\x1f\x8b" + bytes(range(256)) * 1024
    complete(job_id, archive)
    target = tmp_path / "model.tar.gz"

    result = whet("jobs", "download", job_id, "-o", str(target))

    assert early.code == 1 and "no_artifacts" in early.err
    assert result.code == 0 and target.read_bytes() == archive
    assert not (tmp_path / "early.tar.gz").exists()


def test_stats_counts_the_users_jobs(
    whet: Callable[..., Result], config: Path, dataset: Path
) -> None:
    complete(create(whet, config, dataset))
    create(whet, config, dataset)

    human = whet("stats")
    raw = whet("stats", "--json").json()

    assert human.code == 0 and "success rate:  100%" in human.out
    assert raw["total_jobs"] == 2 and raw["jobs_by_status"] == {"completed": 1, "pending": 1}


# -- connection -------------------------------------------------------------------------------


def test_an_unreachable_server_exits_4_and_says_to_run_whet_serve(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"

    code = main(["jobs", "list", "--url", url])

    assert code == 4 and "whet serve" in capsys.readouterr().err


def test_token_create_prints_a_token_the_server_accepts_once_it_restarts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["token", "create", "--user", "carol", "--org", "acme"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("whet_")
    assert load_tokens(get_settings().home)[hash_token(token)].user_id == "carol"


def test_url_and_token_come_from_the_environment(
    server_url: str,
    tokens: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    config: Path,
    dataset: Path,
) -> None:
    monkeypatch.setenv("WHETSTONE_URL", server_url)
    monkeypatch.setenv("WHETSTONE_TOKEN", tokens["alice"])

    assert main(["jobs", "create", str(config), str(dataset), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["user_id"] == "alice"
    assert main(["stats", "--token", "whet_forged"]) == 1
    assert "unauthenticated" in capsys.readouterr().err


def test_a_token_from_the_config_file_scopes_the_cli_to_its_organization(
    server_url: str,
    tokens: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    config: Path,
    dataset: Path,
) -> None:
    settings = tmp_path / "whet.json"
    settings.write_text(json.dumps({"url": server_url, "token": tokens["alice"]}))
    monkeypatch.setenv("WHETSTONE_CONFIG", str(settings))

    assert main(["jobs", "create", str(config), str(dataset), "--json"]) == 0
    job = json.loads(capsys.readouterr().out)
    assert main(["jobs", "get", job["job_id"], "--token", tokens["bob"]]) == 1

    assert job["org_id"] == "acme" and "job_not_found" in capsys.readouterr().err


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out and "3  the awaited job ended failed or cancelled" in out
