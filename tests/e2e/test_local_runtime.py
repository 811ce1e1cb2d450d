"""The local runtime end to end over HTTP: real trainer subprocesses on a tiny model.

A job goes through every status to completed with metrics, logs of all three
sources and artifacts; a stop mid-training ends cancelled with the trainer gone;
a pause mid-training ends paused with the trainer gone and a resume continues from its
checkpoint; a killed trainer ends failed with the reason; a server restart mid-job
resumes it.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from support.apigw import multipart
from support.e2e_jobs import lora_config, repeat_dataset
from support.jobs import HAPPY_PATH

from whetstone.cli.server import make_server
from whetstone.settings import get_settings

pytest.importorskip("torch")

API = "/api/v1/fine-tuning"
WAIT_S = 420


@pytest.fixture
def server_url() -> Iterator[str]:
    server = make_server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def call(method: str, url: str, body: bytes | None = None, content_type: str = "") -> Any:
    request = urllib.request.Request(url, data=body, method=method)
    if content_type:
        request.add_header("content-type", content_type)
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read()
        if response.headers.get("content-type", "").startswith("application/json"):
            return json.loads(raw)
        return raw


def create(base: str, model: Path, count: int = 150, **kwargs: Any) -> str:
    body, content_type = multipart(
        {"config": json.dumps(lora_config(str(model), **kwargs))},
        {"file": ("data.jsonl", repeat_dataset(count))},
    )
    return str(call("POST", f"{base}{API}/jobs", body, content_type)["job_id"])


def wait_until(base: str, job_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            job: dict[str, Any] = call("GET", f"{base}{API}/jobs/{job_id}")
        except (urllib.error.URLError, ConnectionError):
            job = {}
        if job and done(job):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not get there in {WAIT_S}s: {job}")


def trainer_processes(job_id: str) -> list[psutil.Process]:
    """The trainer subprocesses of one job (its plan path holds the job id)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "trainer" in cmdline and any(job_id in part for part in cmdline):
            found.append(process)
    return found


def training_with_checkpoint(job: dict[str, Any]) -> bool:
    return job["status"] == "training" and bool(job["checkpoints"])


def mid_training(
    base: str, model: Path, action: str, until: Callable[[dict[str, Any]], bool], **kwargs: Any
) -> dict[str, Any]:
    """A job created with `kwargs` and sent `action` (stop, pause) once it trains with a
    checkpoint saved; the job once `until` holds."""
    job_id = create(base, model, **kwargs)
    wait_until(base, job_id, training_with_checkpoint)
    call("POST", f"{base}{API}/jobs/{job_id}/{action}")
    return wait_until(base, job_id, until)


def test_a_job_runs_through_every_status_to_completed(server_url: str, tiny_model: Path) -> None:
    job_id = create(server_url, tiny_model)

    job = wait_until(server_url, job_id, lambda j: j["status"] in ("completed", "failed"))

    assert job["status"] == "completed", job["error"]
    assert [h["status"] for h in job["status_history"]] == HAPPY_PATH
    assert job["progress"]["fraction"] == 1.0
    # The local hourly rate defaults to 0; GPU hours count only when the trainer had a GPU.
    assert job["cost"]["current_usd"] == 0 and job["device"] is not None
    assert (job["cost"]["compute_hours"] > 0) == (job["device"]["gpu_count"] > 0)
    metrics = call("GET", f"{server_url}{API}/jobs/{job_id}/metrics")["series"]
    assert {"loss", "eval_loss", "learning_rate"} <= set(metrics)
    for source in ("build", "deployment", "training"):
        logs = call("GET", f"{server_url}{API}/jobs/{job_id}/logs?log_type={source}")["logs"]
        assert logs, f"no {source} logs"
    warned = call("GET", f"{server_url}{API}/jobs/{job_id}/logs?level=warning&limit=1000")["logs"]
    assert not [log["message"] for log in warned if "deprecated" in log["message"].lower()]
    evaluation = call("GET", f"{server_url}{API}/jobs/{job_id}/evaluation")
    assert evaluation["status"] == "completed" and evaluation["samples"] > 0
    assert evaluation["base"] is not None and evaluation["fine_tuned"] is not None
    assert evaluation["rows"][0]["expected"].startswith("w")
    link = call("GET", f"{server_url}{API}/jobs/{job_id}/download")
    archive = call("GET", f"{server_url}{link['url']}")
    names = tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz").getnames()
    assert "adapter_config.json" in names and "adapter_model.safetensors" in names


def test_a_stop_mid_training_ends_cancelled_with_the_trainer_gone(
    server_url: str, tiny_model: Path
) -> None:
    job = mid_training(
        server_url,
        tiny_model,
        "stop",
        lambda j: j["status"] in ("cancelled", "failed"),
        count=400,
        epochs=20,
        save_steps=4,
    )

    job_id = job["job_id"]
    assert job["status"] == "cancelled"
    assert [h["status"] for h in job["status_history"]][-2:] == ["stopping", "cancelled"]
    assert trainer_processes(job_id) == []
    step = job["checkpoints"][-1]["step"]
    link = call("GET", f"{server_url}{API}/jobs/{job_id}/download?artifact=checkpoint&step={step}")
    archive = call("GET", f"{server_url}{link['url']}")
    assert tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz").getnames()


def test_a_pause_mid_training_ends_paused_and_a_resume_continues_from_its_checkpoint(
    server_url: str, tiny_model: Path
) -> None:
    # Given a job training, with a checkpoint saved, when it is paused
    paused = mid_training(
        server_url,
        tiny_model,
        "pause",
        lambda j: j["status"] not in ("training", "pausing"),
        count=200,
        epochs=1,
        save_steps=4,
    )

    # Then it ends paused with no trainer left and a checkpoint kept
    job_id = paused["job_id"]
    assert paused["status"] == "paused", paused["error"]
    assert trainer_processes(job_id) == []
    checkpoint_step = paused["checkpoints"][-1]["step"]
    paused_at = datetime.fromisoformat(paused["status_history"][-1]["at"])

    # When it is resumed, then it completes
    call("POST", f"{server_url}{API}/jobs/{job_id}/resume")
    job = wait_until(server_url, job_id, lambda j: j["status"] in ("completed", "failed"))
    assert job["status"] == "completed", job["error"]
    statuses = [h["status"] for h in job["status_history"]]
    after_pause = statuses[statuses.index("pausing") :]
    assert after_pause[:4] == ["pausing", "paused", "deploying", "training"]
    # and the resumed trainer went on from the checkpoint's step, not from step 0
    losses = call("GET", f"{server_url}{API}/jobs/{job_id}/metrics?names=loss")["series"]["loss"]
    resumed_steps = [
        point["step"] for point in losses if datetime.fromisoformat(point["time"]) > paused_at
    ]
    assert resumed_steps and min(resumed_steps) > checkpoint_step
    assert max(point["step"] for point in losses) == job["progress"]["max_steps"]


def test_a_killed_trainer_ends_failed_with_the_reason(server_url: str, tiny_model: Path) -> None:
    job_id = create(server_url, tiny_model, count=400, epochs=20, save_steps=4)
    wait_until(server_url, job_id, training_with_checkpoint)

    for process in trainer_processes(job_id):
        process.send_signal(signal.SIGKILL)
    job = wait_until(server_url, job_id, lambda j: j["status"] in ("failed", "completed"))

    assert job["status"] == "failed"
    assert job["error"]["step"] == "train"
    assert "killed by signal 9" in job["error"]["message"]


def test_a_server_restart_mid_job_resumes_it(tiny_model: Path) -> None:
    env = {**os.environ, "WHETSTONE_HOME": str(get_settings().home)}

    def serve() -> tuple[subprocess.Popen[str], str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "whetstone.cli.main", "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        while "listening on" not in line:
            line = process.stdout.readline()
        return process, line.split("listening on ")[1].split()[0]

    first, url = serve()
    job_id = create(url, tiny_model, count=150, epochs=1, save_steps=3)
    wait_until(url, job_id, training_with_checkpoint)
    first.kill()
    first.wait()

    second, url = serve()
    try:
        job = wait_until(url, job_id, lambda j: j["status"] in ("completed", "failed"))
    finally:
        second.terminate()
        second.wait(timeout=60)

    statuses = [h["status"] for h in job["status_history"]]
    assert job["status"] == "completed", job["error"]
    assert statuses.count("deploying") == 2 and statuses[-1] == "completed"
