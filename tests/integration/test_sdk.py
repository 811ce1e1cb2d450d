"""The Python SDK against a running `whet serve` over real HTTP."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.clients import report_step, start_training, stepping, write_dataset

from whetstone.api.schemas.jobs import JobResponse
from whetstone.client import (
    MULTIPART_LIMIT_BYTES,
    Job,
    WhetstoneAPIError,
    WhetstoneClient,
    WhetstoneConnectionError,
    WhetstoneTimeoutError,
    resolve_connection,
)
from whetstone.core.job import LogEntry, MetricPoint
from whetstone.core.layout import DATASETS_ROOT, UPLOADS_ROOT, JobLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.runtime import get_platform
from whetstone.service.records import transition

MODEL = "qwen2.5-0.5b-instruct"
SPEC = {"base_model": MODEL, "method": "lora"}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


pytestmark = pytest.mark.usefixtures("no_user_config")


def stored_blob_key(job_id: str) -> str:
    """Where the platform keeps the job's dataset copy: a storage field the API hides."""
    stored = get_platform().jobs.get(job_id)
    assert stored is not None and stored.dataset.blob_key is not None
    return stored.dataset.blob_key


def log(job_id: str, *messages: str, at: datetime = T0) -> None:
    get_platform().logs.append(
        job_id,
        [LogEntry(time=at, source="training", level="info", message=m) for m in messages],
    )


def test_connection_comes_from_arguments_then_environment_then_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"url": "http://file:1/", "token": "from-file"}))
    monkeypatch.setenv("WHETSTONE_CONFIG", str(config))

    from_file = resolve_connection()
    monkeypatch.setenv("WHETSTONE_URL", "http://env:2")
    from_env = resolve_connection()
    from_args = resolve_connection("http://arg:3", "from-arg")

    assert (from_file.base_url, from_file.token) == ("http://file:1", "from-file")
    assert (from_env.base_url, from_env.token) == ("http://env:2", "from-file")
    assert (from_args.base_url, from_args.token) == ("http://arg:3", "from-arg")


def test_without_any_setting_the_client_talks_to_the_local_server() -> None:
    assert resolve_connection().base_url == "http://127.0.0.1:8000"


def test_planning_routes_return_the_servers_models(client: WhetstoneClient) -> None:
    models = client.base_models(max_parameters_b=1)
    hardware = client.hardware_options()
    needs = client.requirements(MODEL)
    fit = client.validate_hardware("llama-3.3-70b-instruct", method="full")
    estimate = client.estimate_cost(MODEL, 1000, gpu_type="nvidia-a10g", epochs=2)

    assert MODEL in [m.id for m in models]
    assert "nvidia-t4" in [g.gpu_type for g in hardware.gpus]
    assert [r.method for r in needs.methods] == ["lora", "qlora", "full", "prompt_tuning", "dpo"]
    assert fit.fits is False and fit.smallest_fitting is not None
    assert estimate.epochs == 2 and estimate.gpu_type == "nvidia-a10g"


def test_a_refusal_raises_with_the_servers_code_and_message(client: WhetstoneClient) -> None:
    with pytest.raises(WhetstoneAPIError) as missing:
        client.get_job_record("ftjob-missing")
    with pytest.raises(WhetstoneAPIError) as invalid:
        client.estimate_cost(MODEL, 0)

    assert (missing.value.status, missing.value.code) == (404, "job_not_found")
    assert "ftjob-missing" in missing.value.message
    assert invalid.value.status == 422 and invalid.value.code == "validation_error"
    assert invalid.value.details[0]["loc"].endswith("num_examples")


def test_an_unreachable_server_names_its_url_and_whet_serve() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"

    with pytest.raises(WhetstoneConnectionError) as error:
        WhetstoneClient(url).stats()

    assert url in str(error.value) and "whet serve" in str(error.value)


def test_a_dataset_file_and_a_source_are_validated(client: WhetstoneClient, tmp_path: Path) -> None:
    good = client.validate_dataset(write_dataset(tmp_path / "good.jsonl"))
    small = client.validate_dataset(write_dataset(tmp_path / "small.jsonl", count=10))
    outside = tmp_path / "elsewhere.jsonl"

    assert good.valid and good.num_examples == 120 and good.format == "alpaca"
    assert not small.valid and small.errors[0].code == "too_few_examples"
    with pytest.raises(WhetstoneAPIError):
        client.validate_dataset(source=str(outside))


def test_create_job_uploads_a_small_dataset_in_one_request(
    client: WhetstoneClient, tmp_path: Path
) -> None:
    config = tmp_path / "job.yaml"
    config.write_text("name: reverse\nspec:\n  base_model: qwen2.5-0.5b-instruct\n  method: lora\n")

    job = client.create_job(config, write_dataset(tmp_path / "train.jsonl"), idempotency_key="k1")
    again = client.create_job(config, write_dataset(tmp_path / "train.jsonl"), idempotency_key="k1")

    assert isinstance(job.record, JobResponse) and job.record.status == "pending"
    assert job.record.name == "reverse" and job.record.dataset.num_examples == 120
    assert stored_blob_key(job.job_id).startswith(DATASETS_ROOT)
    assert again.job_id == job.job_id


def test_a_dataset_over_8_mb_takes_the_upload_flow(client: WhetstoneClient, tmp_path: Path) -> None:
    big = write_dataset(tmp_path / "big.jsonl", count=2100, padding=4000)
    assert big.stat().st_size > MULTIPART_LIMIT_BYTES

    job = client.create_job(SPEC, big, name="big")

    assert stored_blob_key(job.job_id).startswith(UPLOADS_ROOT)
    assert job.record.dataset.num_examples == 2100 and job.record.name == "big"


def test_list_jobs_iterates_every_page(client: WhetstoneClient, tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "train.jsonl")
    ids = [client.create_job(SPEC, data).job_id for _ in range(5)]

    listed = [job.job_id for job in client.list_jobs(page_size=2)]
    pending = list(client.list_jobs(status="pending", method="lora", base_model=MODEL))

    assert listed == list(reversed(ids)) and len(pending) == 5


def test_wait_reports_every_poll_and_returns_the_final_record(
    client: WhetstoneClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = client.create_job(SPEC, write_dataset(tmp_path / "train.jsonl"))
    monkeypatch.setattr(
        Job,
        "wait_between_polls",
        stepping(
            [
                lambda: start_training(job.job_id),
                lambda: report_step(job.job_id, 50, 100, 1.5),
                lambda: transition(get_platform(), job.job_id, JobStatus.COMPLETED),
            ]
        ),
    )
    seen: list[tuple[str, int]] = []

    final = job.wait(poll_s=0, on_update=lambda r: seen.append((r.status, r.progress.step)))

    assert final.status == "completed"
    assert seen == [("pending", 0), ("training", 0), ("training", 50), ("completed", 50)]


def test_wait_gives_up_after_its_timeout(client: WhetstoneClient, tmp_path: Path) -> None:
    job = client.create_job(SPEC, write_dataset(tmp_path / "train.jsonl"))
    with pytest.raises(WhetstoneTimeoutError, match="still pending"):
        job.wait(timeout=0, poll_s=0)


def test_follow_yields_each_entry_once_until_the_job_ends(
    client: WhetstoneClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = client.create_job(SPEC, write_dataset(tmp_path / "train.jsonl"))
    start_training(job.job_id)
    log(job.job_id, "one", "two")

    def finish() -> None:
        log(job.job_id, "four", at=T0 + timedelta(seconds=1))
        transition(get_platform(), job.job_id, JobStatus.COMPLETED)

    monkeypatch.setattr(
        Job,
        "wait_between_polls",
        stepping([lambda: log(job.job_id, "three"), lambda: None, finish]),
    )

    messages = [entry.message for entry in job.follow(poll_s=0)]

    assert messages == ["one", "two", "three", "four"]


def test_logs_and_metrics_are_typed_and_filtered(client: WhetstoneClient, tmp_path: Path) -> None:
    job_id = client.create_job(SPEC, write_dataset(tmp_path / "train.jsonl")).job_id
    get_platform().logs.append(
        job_id,
        [
            LogEntry(time=T0, source="build", level="debug", message="pulling"),
            LogEntry(time=T0, source="training", level="error", message="oom"),
        ],
    )
    get_platform().jobs.put_metrics(
        job_id, [MetricPoint(name="loss", step=s, value=2 / s, time=T0) for s in range(1, 6)]
    )

    errors = list(client.logs(job_id, level="error"))
    build = list(client.logs(job_id, log_type="build"))
    series = client.metrics(job_id, names=["loss"], min_step=2, max_step=4)

    assert [e.message for e in errors] == ["oom"] and [e.message for e in build] == ["pulling"]
    assert [p.step for p in series["loss"]] == [2, 3, 4]


def test_stop_then_delete(client: WhetstoneClient, tmp_path: Path) -> None:
    job = client.create_job(SPEC, write_dataset(tmp_path / "train.jsonl"))

    stopped = job.stop()
    job.delete()

    assert stopped.status == "cancelled"
    with pytest.raises(WhetstoneAPIError) as gone:
        job.refresh()
    assert gone.value.status == 404


def test_download_streams_the_archive_into_a_folder(
    client: WhetstoneClient, tmp_path: Path
) -> None:
    job = client.create_job(SPEC, write_dataset(tmp_path / "train.jsonl"))
    start_training(job.job_id)
    transition(get_platform(), job.job_id, JobStatus.COMPLETED)
    archive = b"\x1f\x8b" + bytes(range(256)) * 4096
    get_platform().blobs.put(JobLayout("local", job.job_id).model_archive, archive)

    path = job.download(tmp_path)

    assert path == tmp_path / f"{job.job_id}.tar.gz" and path.read_bytes() == archive


def test_a_token_scopes_the_client_to_its_organization(
    server_url: str, tokens: dict[str, str], tmp_path: Path
) -> None:
    alice = WhetstoneClient(server_url, tokens["alice"])
    bob = WhetstoneClient(server_url, tokens["bob"])
    job = alice.create_job(SPEC, write_dataset(tmp_path / "train.jsonl"))

    assert job.record.org_id == "acme"
    assert [j.job_id for j in alice.list_jobs()] == [job.job_id]
    with pytest.raises(WhetstoneAPIError) as hidden:
        bob.get_job(job.job_id)
    assert hidden.value.code == "job_not_found"


def test_the_job_handle_fetches_lazily(client: WhetstoneClient, tmp_path: Path) -> None:
    created = client.create_job(SPEC, write_dataset(tmp_path / "train.jsonl"))
    handle: Any = client.job(created.job_id)
    assert handle.status == "pending" and handle.record.job_id == created.job_id
