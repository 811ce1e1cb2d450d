"""DELETE /jobs/{id} cascades to everything the job left, in every store: after it, listing
each store finds nothing of the job, while another job of the same organization is intact."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from support.apigw import call_api
from support.aws_workflow import BUCKET, CALLER, LOG_GROUP, TABLE
from support.http import is_running
from support.jobs import RecordingOrchestrator
from support.platform import use_ports

from whetstone.adapters.local.process_deployer import ProcessDeployer
from whetstone.cli.tokens import DEFAULT_CALLER
from whetstone.core.job import Caller, LogEntry, MetricPoint
from whetstone.core.layout import (
    CHECKPOINT_COMPLETE_MARKER,
    UPLOADS_ROOT,
    JobLayout,
    UploadLayout,
)
from whetstone.core.lifecycle import JobStatus
from whetstone.runtime import get_platform
from whetstone.service import workflow
from whetstone.service.jobs import NewJob, create_job
from whetstone.service.platform import Platform
from whetstone.service.records import transition
from whetstone.service.uploads import create_upload
from whetstone.settings import get_settings

API = "/api/v1/fine-tuning"
MODEL = "qwen2.5-0.5b-instruct"
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
DATASET = "\n".join(
    f'{{"instruction": "Reverse {i}", "input": "w{i}", "output": "{i}w"}}' for i in range(120)
).encode()
TRAINER_OUTPUT = {
    "model/adapter_config.json": b'{"r": 8, "target_modules": ["q_proj", "v_proj"]}',
    "model/adapter_model.safetensors": b"weights",
    "model/chat_template.jinja": b"{% for m in messages %}{{ m.content }}{% endfor %}",
    "merged/config.json": b"{}",
    "merged/model.safetensors": b"merged",
    "checkpoints/checkpoint-2/adapter_model.safetensors": b"weights at 2",
    "checkpoints/checkpoint-2/optimizer.pt": b"state",
    f"checkpoints/checkpoint-2/{CHECKPOINT_COMPLETE_MARKER}": b"",
    "metrics.jsonl": b"{}\n",
    "run_manifest.json": b"{}",
}


def a_finished_job(platform: Platform, caller: Caller, *, via_upload: bool, key: str) -> str:
    """A job as the platform leaves it after a whole run: its record with a status history
    and an idempotency key, metrics, logs of every source, the dataset copy (or its upload),
    the plan and splits, the trainer's output, and the download archives."""
    spec = {"base_model": MODEL, "method": "lora"}
    new = NewJob.model_validate({"spec": spec})
    if via_upload:
        upload = create_upload(platform, caller)
        platform.blobs.put(UploadLayout(caller.org_id, upload.upload_id).data, DATASET)
        new = NewJob.model_validate({"spec": {**spec, "dataset": {"source": upload.upload_id}}})
        job = create_job(platform, caller, new, idempotency_key=key)
    else:
        job = create_job(
            platform, caller, new, dataset=DATASET, filename="train.jsonl", idempotency_key=key
        )
    job_id = job.job_id
    layout = JobLayout(caller.org_id, job_id)
    platform.blobs.put(layout.plan, b"{}")
    platform.blobs.put(layout.split("train"), b"{}\n")
    for name, data in TRAINER_OUTPUT.items():
        platform.blobs.put(layout.output + name, data)
    platform.jobs.put_metrics(
        job_id,
        [
            MetricPoint(name=name, step=s, value=1.0, time=NOW)
            for name in ("loss", "eval_loss")
            for s in range(1, 31)
        ],
    )
    platform.logs.append(
        job_id,
        [
            LogEntry(time=NOW, source=source, level="info", message=f"{source} line")
            for source in ("build", "deployment", "training")
        ],
    )
    for status in (JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING):
        transition(platform, job_id, status)
    workflow.finalize(platform, job_id)
    return job_id


# -- local: SQLite, the blob folder, log files, the deployment's process ----------------------


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def sqlite_rows_naming(database: Path, text: str) -> list[tuple[str, tuple[object, ...]]]:
    """Every row of every table with `text` in any column."""
    with sqlite3.connect(database) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [
            (table, row)
            for table in tables
            for row in db.execute(f"SELECT * FROM {table}")  # noqa: S608 - names from the schema
            if any(text in str(value) for value in row)
        ]


@pytest.fixture
def server_stand_in(tmp_path: Path) -> str:
    """An executable the deployer starts in place of the model server: a real process that
    runs until it is ended, without loading a model."""
    script = tmp_path / "model-server"
    script.write_text("#!/bin/sh\nexec sleep 300\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_given_two_jobs_when_one_is_deleted_then_no_local_store_keeps_anything_of_it(
    orchestrator: RecordingOrchestrator, server_stand_in: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = get_settings().home
    platform = use_ports(
        monkeypatch,
        deployer=ProcessDeployer(
            home / "run" / "deployments",
            python=server_stand_in,
            golden_answer=lambda model_dir, base: "unused",
        ),
    )
    gone = a_finished_job(platform, DEFAULT_CALLER, via_upload=True, key="run-1")
    kept = a_finished_job(platform, DEFAULT_CALLER, via_upload=False, key="run-2")
    deployed = call_api("POST", f"{API}/jobs/{gone}/deploy")
    assert deployed.status == 202, deployed.body
    stored = platform.jobs.get(gone)  # the server's pid is a storage field the API hides
    assert stored is not None and stored.deployment is not None and stored.deployment.pid
    pid = stored.deployment.pid
    assert is_running(pid)
    kept_before = {
        "blobs": [f for f in files_under(home / "blobs") if kept in f],
        "logs": files_under(home / "logs" / kept),
        "rows": sqlite_rows_naming(home / "jobs.sqlite3", kept),
    }
    upload = platform.jobs.get(gone).dataset.blob_key  # type: ignore[union-attr]
    assert upload is not None and (home / "blobs" / upload).is_file()

    response = call_api("DELETE", f"{API}/jobs/{gone}")

    assert response.status == 204
    assert not is_running(pid)
    assert sqlite_rows_naming(home / "jobs.sqlite3", gone) == []
    leftovers = [path for path in files_under(home) if gone in path]
    assert leftovers == []  # blobs (job prefix, dataset copy), log files, pid and server log
    assert not (home / "blobs" / upload).parent.exists()  # the upload only this job used
    assert call_api("GET", f"{API}/jobs/{gone}").status == 404
    assert [f for f in files_under(home / "blobs") if kept in f] == kept_before["blobs"]
    assert files_under(home / "logs" / kept) == kept_before["logs"]
    assert sqlite_rows_naming(home / "jobs.sqlite3", kept) == kept_before["rows"]
    assert call_api("GET", f"{API}/jobs/{kept}/download?artifact=checkpoint&step=2").status == 200


def test_an_upload_another_job_still_names_is_kept(orchestrator: RecordingOrchestrator) -> None:
    platform = get_platform()
    upload = create_upload(platform, DEFAULT_CALLER)
    key = UploadLayout(DEFAULT_CALLER.org_id, upload.upload_id).data
    platform.blobs.put(key, DATASET)
    spec = {"base_model": MODEL, "method": "lora", "dataset": {"source": upload.upload_id}}
    first, second = (
        create_job(platform, DEFAULT_CALLER, NewJob.model_validate({"spec": spec}))
        for _ in range(2)
    )
    call_api("POST", f"{API}/jobs/{first.job_id}/stop")

    assert call_api("DELETE", f"{API}/jobs/{first.job_id}").status == 204

    assert platform.blobs.exists(key)
    assert platform.jobs.get(second.job_id) is not None


# -- aws: DynamoDB, S3, CloudWatch Logs, through the Lambda handler ---------------------------


def dynamodb_items_naming(text: str) -> list[Any]:
    client = boto3.client("dynamodb")
    items: list[Any] = []
    for page in client.get_paginator("scan").paginate(TableName=TABLE, ConsistentRead=True):
        items.extend(item for item in page["Items"] if text in str(item))
    return items


def s3_keys() -> list[str]:
    client = boto3.client("s3")
    return [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for item in page.get("Contents", [])
    ]


def log_streams() -> list[str]:
    client = boto3.client("logs")
    return [
        stream["logStreamName"]
        for page in client.get_paginator("describe_log_streams").paginate(logGroupName=LOG_GROUP)
        for stream in page["logStreams"]
    ]


def test_given_two_jobs_when_one_is_deleted_then_no_aws_store_keeps_anything_of_it(
    aws_platform: Platform,
) -> None:
    gone = a_finished_job(aws_platform, CALLER, via_upload=True, key="run-1")
    kept = a_finished_job(aws_platform, CALLER, via_upload=False, key="run-2")
    kept_before = {
        "items": dynamodb_items_naming(kept),
        "keys": [k for k in s3_keys() if kept in k],
        "streams": [s for s in log_streams() if s.startswith(kept)],
    }
    assert len(dynamodb_items_naming(gone)) > 60  # the job, its idempotency key, 60 points
    assert any(k.startswith(f"{UPLOADS_ROOT}{CALLER.org_id}/") for k in s3_keys())

    response = call_api("DELETE", f"{API}/jobs/{gone}", caller=CALLER)

    assert response.status == 204
    assert dynamodb_items_naming(gone) == []
    assert [k for k in s3_keys() if gone in k or k.startswith(UPLOADS_ROOT)] == []
    assert [s for s in log_streams() if gone in s] == []
    assert dynamodb_items_naming(kept) == kept_before["items"]
    assert [k for k in s3_keys() if kept in k] == kept_before["keys"]
    assert [s for s in log_streams() if s.startswith(kept)] == kept_before["streams"]
    assert call_api("GET", f"{API}/jobs/{kept}", caller=CALLER).status == 200
