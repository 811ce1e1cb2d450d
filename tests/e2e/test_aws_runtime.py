"""The aws runtime end to end on one machine: a job created through the API handler runs
the real state machine definition, whose step Lambdas start Kubernetes Jobs whose
containers (the trainer, as the manifests describe it) train a tiny model and report
through EventBridge to ingest (tests/support/aws_e2e, docs/workflow.md)."""

from __future__ import annotations

import io
import json
import signal
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest
from support.apigw import multipart
from support.aws_e2e.harness import MODEL_ID, AwsRuntime, aws_runtime
from support.aws_e2e.process_kube import MAX_GRACE_S
from support.aws_workflow import BUCKET
from support.e2e_jobs import lora_config, repeat_dataset
from support.jobs import HAPPY_PATH

from whetstone.adapters.aws.kube.shared_manifests import LABEL_JOB
from whetstone.adapters.aws.kube.training_manifests import BACKOFF_LIMIT
from whetstone.cli.tokens import DEFAULT_CALLER
from whetstone.core.layout import INCOMING_ROOT
from whetstone.service.stage_tasks import TRAINER_LOST

pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # real trainers; `make test` runs them

# The trainer image is in ECR already (the definition's ImageCached path): no build.
CACHED_IMAGE_PATH = [status for status in HAPPY_PATH if status != "building"]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model: Path) -> Iterator[AwsRuntime]:
    with aws_runtime(monkeypatch, tmp_path, tiny_model) as harness:
        yield harness


def spec(*, epochs: int = 1, save_steps: int = 10) -> dict[str, Any]:
    return lora_config(MODEL_ID, epochs=epochs, save_steps=save_steps, batch_size=8)


def create(aws: AwsRuntime, count: int = 110, **kwargs: Any) -> str:
    body, content_type = multipart(
        {"config": json.dumps(spec(**kwargs))}, {"file": ("data.jsonl", repeat_dataset(count))}
    )
    created = aws.api("POST", "/jobs", body=body, headers={"content-type": content_type})
    return str(created["job_id"])


def statuses(job: dict[str, Any]) -> list[str]:
    return [change["status"] for change in job["status_history"]]


def training_with_checkpoint(job: dict[str, Any]) -> bool:
    return job["status"] == "training" and bool(job["checkpoints"])


def test_a_job_created_through_the_api_completes_with_everything_it_promises(
    aws: AwsRuntime, tiny_model: Path, tmp_path: Path
) -> None:
    job_id = create(aws)

    job = aws.wait_for_end(job_id)

    assert job["status"] == "completed", (job["error"], aws.container_logs())
    assert statuses(job) == CACHED_IMAGE_PATH
    assert job["cost"]["current_usd"] > 0  # the node's rate over the time it trained
    metrics = aws.api("GET", f"/jobs/{job_id}/metrics")["series"]
    assert {"loss", "learning_rate"} <= set(metrics)
    for source in ("build", "deployment", "training"):
        logs = aws.api("GET", f"/jobs/{job_id}/logs?log_type={source}")["logs"]
        assert logs, f"no {source} logs"
    objects = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="jobs/")["Contents"]
    assert any(o["Key"].endswith("adapter_model.safetensors") for o in objects)
    link = aws.api("GET", f"/jobs/{job_id}/download")
    with urllib.request.urlopen(link["url"], timeout=60) as response:
        archive = response.read()
    tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz").extractall(tmp_path / "adapter")
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model), str(tmp_path / "adapter")
    )
    assert model.peft_config["default"].peft_type == "LORA"


def test_a_stop_during_training_ends_cancelled_with_the_trainer_gone(aws: AwsRuntime) -> None:
    job_id = create(aws, epochs=20)
    aws.wait_until(job_id, lambda job: job["status"] == "training")
    pod = aws.kube.running(job_id)
    assert pod is not None

    aws.api("POST", f"/jobs/{job_id}/stop")
    job = aws.wait_for_end(job_id)

    assert job["status"] == "cancelled", job["error"]
    assert statuses(job)[-2:] == ["stopping", "cancelled"]
    assert pod.process.wait(timeout=MAX_GRACE_S) is not None
    assert not psutil.pid_exists(pod.process.pid)
    assert aws.kube.list_objects("Job", None, {LABEL_JOB: job_id}) == []


def test_a_trainer_that_keeps_dying_ends_failed_with_the_reason(aws: AwsRuntime) -> None:
    job_id = create(aws, epochs=20)
    aws.wait_until(job_id, lambda job: job["status"] == "training")

    for _ in range(BACKOFF_LIMIT + 1):  # every retry the Job allows dies too
        pod = aws.wait_for_pod(job_id)
        pod.signal(signal.SIGKILL)
        pod.process.wait()
    job = aws.wait_for_end(job_id)  # the reconciler finds the Job failed

    assert job["status"] == "failed"
    assert job["error"]["code"] == TRAINER_LOST
    assert "BackoffLimitExceeded" in job["error"]["message"]


def test_a_job_dropped_in_s3_survives_losing_its_node_and_completes(aws: AwsRuntime) -> None:
    drop = f"{INCOMING_ROOT}{DEFAULT_CALLER.org_id}/words"
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"{drop}.jsonl", Body=repeat_dataset(110))
    config = {"spec": spec(epochs=2, save_steps=4)}
    s3.put_object(Bucket=BUCKET, Key=f"{drop}.job.json", Body=json.dumps(config).encode())
    job_id = aws.wait_for_drop(f"{drop}.accepted.json")
    aws.wait_until(job_id, training_with_checkpoint)

    aws.kube.lose_node(aws.wait_for_pod(job_id))
    job = aws.wait_for_end(job_id)

    assert job["status"] == "completed", (job["error"], aws.container_logs())
    logs = aws.api("GET", f"/jobs/{job_id}/logs?log_type=training&limit=500")["logs"]
    assert any(entry["message"] == "resuming from checkpoint" for entry in logs)
    assert len([pod for pod in aws.kube.pods if pod.job[2] == job_id]) == 2
