"""Every route answers a wire model: no storage field reaches an API user, and the OpenAPI
document names the wire models rather than the records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from support.apigw import call_api, multipart
from support.clients import start_training, write_dataset
from support.jobs import RecordingOrchestrator

from whetstone.core.evaluation import EvaluationReport
from whetstone.core.job import Deployment, JobRecord, LogEntry, MetricPoint, utcnow
from whetstone.core.layout import JobLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.runtime import get_platform
from whetstone.service.records import transition, update_job

API = "/api/v1/fine-tuning"
MODEL = "qwen2.5-0.5b-instruct"
STORAGE_FIELDS = {"version", "idempotency_key", "stop_requested", "blob_key", "pid", "key"}
WIRE_MODELS = {
    "JobResponse",
    "JobListResponse",
    "JobDataset",
    "DeploymentResponse",
    "LogPageResponse",
    "MetricSeriesResponse",
    "DownloadLinkResponse",
    "UploadResponse",
    "UploadReceipt",
    "UserStatsResponse",
    "DatasetValidationResponse",
    "BaseModelsResponse",
    "HardwareOptionsResponse",
    "RequirementsResponse",
    "MethodRequirementResponse",
    "ValidateHardwareResponse",
    "EstimateCostResponse",
    "EvaluationResponse",
}
RECORDS = {
    "JobRecord",
    "JobView",
    "DatasetInfo",
    "Deployment",
    "DeploymentView",
    "DownloadLink",
    "EvaluationReport",
}


def keys(value: Any) -> Iterator[str]:
    """Every object key anywhere in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from keys(item)


def created_job(tmp_path: Any, idempotency_key: str) -> dict[str, Any]:
    body, content_type = multipart(
        {"config": json.dumps({"name": "wire", "spec": {"base_model": MODEL}})},
        {"file": ("train.jsonl", write_dataset(tmp_path / "train.jsonl").read_bytes())},
    )
    response = call_api(
        "POST",
        f"{API}/jobs",
        body=body,
        headers={"content-type": content_type, "Idempotency-Key": idempotency_key},
    )
    assert response.status == 201, response.body
    body: dict[str, Any] = response.body
    return body


def served(job: JobRecord) -> JobRecord:
    now = utcnow()
    deployment = Deployment(
        status="starting",
        model=job.job_id,
        pid=4242,
        max_lora_rank=16,
        created_at=now,
        updated_at=now,
    )
    return job.model_copy(update={"deployment": deployment})


@pytest.fixture
def responses(orchestrator: RecordingOrchestrator, tmp_path: Any) -> dict[str, Any]:
    """The JSON of every route that answers JSON, for jobs holding every storage field."""
    platform = get_platform()
    create = created_job(tmp_path, "key-1")
    completed = create["job_id"]
    start_training(completed)
    transition(platform, completed, JobStatus.COMPLETED)
    platform.blobs.put(JobLayout("local", completed).model_archive, b"\x1f\x8bmodel")
    report = EvaluationReport(status="skipped", reason="evaluation.enabled is false")
    platform.blobs.put(JobLayout("local", completed).evaluation, report.model_dump_json().encode())
    update_job(platform, completed, served)
    platform.logs.append(
        completed, [LogEntry(time=utcnow(), source="training", level="info", message="hi")]
    )
    platform.jobs.put_metrics(
        completed, [MetricPoint(name="loss", step=1, value=1.0, time=utcnow())]
    )
    stopping = created_job(tmp_path, "key-2")["job_id"]
    start_training(stopping)
    upload = call_api("POST", f"{API}/uploads").body
    calls = {
        "create json": (
            "POST",
            "/jobs/json",
            {"spec": {"base_model": MODEL, "dataset": {"source": "s3://bucket/train.jsonl"}}},
        ),
        "stop": ("POST", f"/jobs/{stopping}/stop", None),
        "list": ("GET", "/jobs", None),
        "get": ("GET", f"/jobs/{completed}", None),
        "logs": ("GET", f"/jobs/{completed}/logs", None),
        "metrics": ("GET", f"/jobs/{completed}/metrics", None),
        "evaluation": ("GET", f"/jobs/{completed}/evaluation", None),
        "download": ("GET", f"/jobs/{completed}/download", None),
        "deployment": ("GET", f"/jobs/{completed}/deployment", None),
        "stats": ("GET", "/stats", None),
        "upload": ("PUT", upload["path"].removeprefix(API), None),
        "base models": ("GET", "/base-models", None),
        "hardware": ("GET", "/hardware-options", None),
        "requirements": ("GET", f"/models/{MODEL}/requirements", None),
        "fit": ("POST", "/validate-hardware", {"model_id": MODEL}),
        "cost": ("POST", "/estimate-cost", {"model_id": MODEL, "num_examples": 100}),
        "dataset": ("POST", "/datasets/validate", None),
    }
    answers: dict[str, Any] = {"create": create, "upload start": upload}
    for name, (method, path, body) in calls.items():
        headers = {"content-type": "application/json"} if body is not None else {}
        if name == "dataset":
            data, content_type = multipart({}, {"file": ("d.jsonl", b'{"text": "a"}\n')})
            response = call_api(
                method, API + path, body=data, headers={"content-type": content_type}
            )
        else:
            raw = (
                json.dumps(body).encode() if body is not None else b"x" if method == "PUT" else None
            )
            response = call_api(method, API + path, body=raw, headers=headers)
        assert response.status < 300, (name, response.status, response.body)
        answers[name] = response.body
    return answers


def test_given_jobs_holding_storage_fields_when_every_route_answers_then_none_shows_them(
    responses: dict[str, Any],
) -> None:
    leaked = {name: STORAGE_FIELDS & set(keys(body)) for name, body in responses.items()}

    assert {name: found for name, found in leaked.items() if found} == {}
    assert responses["get"]["deployment"]["status"] == "starting"
    assert responses["stop"]["status"] == "stopping"


def test_the_openapi_document_names_the_wire_models_and_no_record() -> None:
    document = call_api("GET", "/api/v1/openapi.json").body

    schemas = set(document["components"]["schemas"])
    route = document["paths"][f"{API}/jobs/{{job_id}}"]["get"]["responses"]["200"]
    assert WIRE_MODELS <= schemas
    assert RECORDS & schemas == set()
    assert route["content"]["application/json"]["schema"]["$ref"].endswith("/JobResponse")
