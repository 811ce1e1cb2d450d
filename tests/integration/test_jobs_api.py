"""Every job endpoint through the Lambda handler, on the local stores (SQLite, folder, files)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.apigw import ApiResponse, call_api, multipart
from support.jobs import RecordingOrchestrator

from whetstone.cli.tokens import DEFAULT_CALLER
from whetstone.core.job import Caller, JobFilter, LogEntry, MetricPoint
from whetstone.core.layout import JobLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.core.logs import LogQuery
from whetstone.runtime import get_platform
from whetstone.service.hub_cache import HubRepo, cache_folders
from whetstone.service.platform import Platform
from whetstone.service.records import transition
from whetstone.settings import get_settings

API = "/api/v1/fine-tuning"
MODEL = "qwen2.5-0.5b-instruct"
OTHER_ORG = Caller(user_id="mallory", org_id="other-org")


@pytest.fixture
def platform(orchestrator: RecordingOrchestrator) -> Platform:
    return get_platform()


def dataset(count: int = 120) -> bytes:
    rows = [
        {"instruction": f"Reverse the word number {i}", "input": f"word{i}", "output": f"{i}drow"}
        for i in range(count)
    ]
    return "\n".join(json.dumps(row) for row in rows).encode()


def spec(**fields: Any) -> dict[str, Any]:
    return {"base_model": MODEL, "method": "lora", **fields}


def create(
    config: dict[str, Any] | None = None,
    data: bytes | None = None,
    *,
    caller: Caller | None = None,
    headers: dict[str, str] | None = None,
) -> ApiResponse:
    body, content_type = multipart(
        {"config": json.dumps(config or spec())}, {"file": ("train.jsonl", data or dataset())}
    )
    kwargs: dict[str, Any] = {"caller": caller} if caller else {}
    return call_api(
        "POST",
        f"{API}/jobs",
        body=body,
        headers={"content-type": content_type, **(headers or {})},
        **kwargs,
    )


def test_create_with_an_uploaded_dataset_stores_a_pending_job_and_starts_it(
    platform: Platform, orchestrator: RecordingOrchestrator
) -> None:
    response = create()

    assert response.status == 201
    job = response.body
    assert job["status"] == "pending"
    assert job["job_id"] in orchestrator.started
    assert job["dataset"]["num_examples"] == 120 and job["dataset"]["format"] == "alpaca"
    assert job["estimate"]["tokens_per_example_measured"]
    assert job["cost"]["hourly_rate_usd"] == job["estimate"]["estimated_cost_usd"] == 0.0
    assert [h["status"] for h in job["status_history"]] == ["pending"]
    assert platform.blobs.exists(job["spec"]["dataset"]["source"].split("/blobs/", 1)[1])


def test_create_warns_when_a_warmup_set_by_hand_outlasts_the_run() -> None:
    # Given 120 examples (96 to train on, 4 per batch, 4 batches per update: 6 updates an
    # epoch, 18 in 3 epochs) and product.md's old fixed warmup of 100 steps
    response = create(spec(training={"warmup_steps": 100}))

    # Then the job is created, with a warning naming the warmup and the run's steps
    assert response.status == 201
    (warning,) = response.body["warnings"]
    assert warning["code"] == "warmup_longer_than_run"
    assert "warmup_steps 100" in warning["message"] and "18 optimizer steps" in warning["message"]


def test_create_does_not_warn_when_warmup_is_left_to_the_run() -> None:
    response = create()

    assert response.status == 201
    assert response.body["warnings"] == []
    assert response.body["spec"]["training"]["warmup_steps"] is None


def test_given_a_local_hourly_rate_when_a_job_is_created_then_its_cost_uses_that_rate(
    monkeypatch: pytest.MonkeyPatch, orchestrator: RecordingOrchestrator
) -> None:
    monkeypatch.setenv("WHETSTONE_LOCAL_HOURLY_RATE_USD", "1.5")
    get_settings.cache_clear()
    get_platform.cache_clear()

    job = create().body

    hours = job["estimate"]["estimated_hours"]
    assert job["cost"]["hourly_rate_usd"] == job["estimate"]["hourly_rate_usd"] == 1.5
    assert job["estimate"]["estimated_cost_usd"] == round(hours * 1.5, 2)


def test_create_accepts_a_config_with_name_and_spec() -> None:
    response = create({"name": "reverse words", "spec": spec()})
    assert response.status == 201 and response.body["name"] == "reverse words"


def test_create_rejects_an_invalid_dataset_with_its_report(
    orchestrator: RecordingOrchestrator,
) -> None:
    response = create(data=dataset(20))

    assert response.status == 422
    assert response.body["code"] == "dataset_invalid"
    report = response.body["details"]
    assert report["valid"] is False and report["errors"][0]["code"] == "too_few_examples"
    assert orchestrator.started == []


def test_create_rejects_a_job_that_does_not_fit_naming_what_does() -> None:
    response = create(spec(base_model="llama-3.3-70b-instruct", method="full"))

    assert response.status == 422
    assert response.body["code"] == "does_not_fit"
    assert "smallest configuration that fits" in response.body["message"]
    assert response.body["details"]["smallest_fitting"]["gpu_count"] == 8


def test_create_rejects_an_invalid_spec_by_path() -> None:
    response = create(spec(training={"epochs": 0}))
    assert response.status == 422
    assert response.body["details"][0]["loc"] == "spec.training.epochs"


def test_create_names_an_unknown_field_and_the_one_meant() -> None:
    response = create(spec(training={"epoch": 2}))
    assert response.status == 422
    (detail,) = response.body["details"]
    assert detail["loc"] == "spec.training"
    assert detail["message"].startswith("unknown field 'epoch'; did you mean 'epochs'?")


def test_create_rejects_a_config_that_is_not_json() -> None:
    body, content_type = multipart({"config": "{nope"}, {"file": ("a.jsonl", dataset())})
    response = call_api("POST", f"{API}/jobs", body=body, headers={"content-type": content_type})
    assert response.status == 422 and response.body["code"] == "config_not_json"


def test_create_json_names_an_s3_dataset() -> None:
    response = call_api(
        "POST",
        f"{API}/jobs/json",
        json_body={"spec": spec(dataset={"source": "s3://bucket/train.jsonl"})},
    )
    assert response.status == 201
    assert response.body["dataset"]["source"] == "s3://bucket/train.jsonl"


@pytest.fixture
def dataset_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The only dataset root of a fresh platform."""
    from whetstone.settings import get_settings

    roots = tmp_path / "roots"
    roots.mkdir()
    monkeypatch.setenv("WHETSTONE_DATASET_ROOTS", json.dumps([str(roots)]))
    get_settings.cache_clear()
    get_platform.cache_clear()
    return roots


@pytest.mark.parametrize(
    ("source", "code"),
    [("/etc/passwd", "path_not_allowed"), ("missing.jsonl", "dataset_missing")],
)
def test_create_json_refuses_a_local_source_it_cannot_read(
    dataset_roots: Path, orchestrator: RecordingOrchestrator, source: str, code: str
) -> None:
    # Given a source outside the dataset roots, or one that names no file inside them
    # When a job names it
    response = create_json(spec(dataset={"source": source}))

    # Then the job is refused at once, and none starts
    assert response.status == 422 and response.body["code"] == code
    assert orchestrator.started == []


def test_create_json_takes_a_local_source_inside_the_roots(dataset_roots: Path) -> None:
    (dataset_roots / "train.jsonl").write_bytes(dataset())

    response = create_json(spec(dataset={"source": "train.jsonl"}))

    assert response.status == 201


def test_create_json_refuses_an_uncached_hub_dataset_offline(
    orchestrator: RecordingOrchestrator,
) -> None:
    response = create_json(spec(dataset={"source": "hf://someone/not-cached@train"}))

    assert response.status == 422 and response.body["code"] == "hf_unavailable"
    assert "someone/not-cached" in response.body["message"]
    assert orchestrator.started == []


def test_create_json_takes_a_cached_hub_dataset_offline() -> None:
    cache_folders(HubRepo("dataset", "someone/cached"))[0].mkdir(parents=True)

    response = create_json(spec(dataset={"source": "hf://someone/cached"}))

    assert response.status == 201


def test_create_json_refuses_an_hf_dataset_that_names_a_path() -> None:
    response = create_json(spec(dataset={"source": "hf://../home"}))

    assert response.status == 422 and response.body["code"] == "invalid_source"


def test_on_aws_create_json_refuses_another_orgs_s3_dataset(aws_platform: Platform) -> None:
    source = f"s3://{aws_platform.settings.bucket}/datasets/{OTHER_ORG.org_id}/job-1/data.jsonl"

    response = create_json(spec(dataset={"source": source}))

    assert response.status == 422 and response.body["code"] == "source_not_allowed"
    assert (
        aws_platform.jobs.list_jobs(DEFAULT_CALLER.org_id, JobFilter(), limit=9, cursor=None)[0]
        == []
    )


@pytest.mark.parametrize("base_model", [MODEL, "hf://Qwen/Qwen2.5-0.5B-Instruct"])
def test_create_refuses_a_hub_model_not_cached_offline(
    orchestrator: RecordingOrchestrator, base_model: str
) -> None:
    # Given the hub offline and the model's weights not in the local cache
    cache_folders(HubRepo("model", "Qwen/Qwen2.5-0.5B-Instruct"))[0].rmdir()

    # When a job names the model
    response = create(spec(base_model=base_model), dataset())

    # Then the job is refused at once, and none starts
    assert response.status == 422 and response.body["code"] == "hf_unavailable"
    assert base_model in response.body["message"]
    assert orchestrator.started == []


def create_json(job_spec: dict[str, Any]) -> ApiResponse:
    return call_api("POST", f"{API}/jobs/json", json_body={"spec": job_spec})


def test_create_json_without_a_dataset_says_how_to_name_one() -> None:
    response = call_api("POST", f"{API}/jobs/json", json_body={"spec": spec()})
    assert response.status == 422 and response.body["code"] == "dataset_missing"


def test_the_upload_flow_feeds_jobs_json() -> None:
    upload = call_api("POST", f"{API}/uploads").body
    put = call_api(
        "PUT",
        upload["path"],
        body=dataset(),
        headers={"content-type": "application/octet-stream"},
    )
    job = call_api(
        "POST",
        f"{API}/jobs/json",
        json_body={"spec": spec(dataset={"source": upload["upload_id"]})},
    )

    assert put.status == 200 and put.body["size_bytes"] == len(dataset())
    assert job.status == 201 and job.body["dataset"]["num_examples"] == 120


def test_an_upload_id_without_data_is_refused() -> None:
    upload = call_api("POST", f"{API}/uploads").body
    response = call_api(
        "POST",
        f"{API}/jobs/json",
        json_body={"spec": spec(dataset={"source": upload["upload_id"]})},
    )
    assert response.status == 422 and response.body["code"] == "upload_missing"


def test_a_source_shaped_like_an_upload_but_not_one_is_refused() -> None:
    # Given a source that starts like an upload id but walks out of it
    response = call_api(
        "POST",
        f"{API}/jobs/json",
        json_body={"spec": spec(dataset={"source": "upload-x/../../jobs/other/data"})},
    )

    # Then no key is built from it
    assert response.status == 404 and response.body["code"] == "upload_not_found"


def test_an_idempotency_key_returns_the_same_job(orchestrator: RecordingOrchestrator) -> None:
    first = create(headers={"Idempotency-Key": "abc-123"})
    again = create(headers={"Idempotency-Key": "abc-123"})
    other = create(headers={"Idempotency-Key": "abc-124"})

    assert first.body["job_id"] == again.body["job_id"] != other.body["job_id"]
    assert len(orchestrator.started) == 2


def test_get_returns_the_job_with_its_cost_and_progress() -> None:
    job_id = create().body["job_id"]
    body = call_api("GET", f"{API}/jobs/{job_id}").body
    assert body["job_id"] == job_id
    assert {"cost", "progress", "latest_metrics", "estimate", "status_history"} <= set(body)


def test_list_is_newest_first_and_pages_with_a_token() -> None:
    ids = [create().body["job_id"] for _ in range(5)]

    first = call_api("GET", f"{API}/jobs?limit=2").body
    second = call_api("GET", f"{API}/jobs?limit=2&next_token={first['next_token']}").body
    third = call_api("GET", f"{API}/jobs?limit=2&next_token={second['next_token']}").body

    listed = [j["job_id"] for page in (first, second, third) for j in page["jobs"]]
    assert listed == list(reversed(ids))
    assert third["next_token"] is None


def test_list_filters_by_status_method_model_and_creation_time(platform: Platform) -> None:
    kept = create().body["job_id"]
    cancelled = create().body["job_id"]
    call_api("POST", f"{API}/jobs/{cancelled}/stop")
    after = (datetime.now(UTC) - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")

    pending = call_api("GET", f"{API}/jobs?status=pending").body["jobs"]
    lora = call_api("GET", f"{API}/jobs?method=lora&base_model={MODEL}").body["jobs"]
    qlora = call_api("GET", f"{API}/jobs?method=qlora").body["jobs"]
    recent = call_api("GET", f"{API}/jobs?created_after={after}").body["jobs"]

    assert [j["job_id"] for j in pending] == [kept]
    assert len(lora) == 2 and qlora == [] and len(recent) == 2


def test_list_rejects_a_forged_token() -> None:
    response = call_api("GET", f"{API}/jobs?next_token=forged")
    assert response.status == 422 and response.body["code"] == "invalid_cursor"


def test_stopping_a_pending_job_cancels_it_at_once() -> None:
    job_id = create().body["job_id"]
    response = call_api("POST", f"{API}/jobs/{job_id}/stop")
    assert response.body["status"] == "cancelled"


def test_stopping_a_running_job_asks_the_workflow(
    platform: Platform, orchestrator: RecordingOrchestrator
) -> None:
    job_id = create().body["job_id"]
    for status in (JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING):
        transition(platform, job_id, status)

    response = call_api("POST", f"{API}/jobs/{job_id}/stop")

    assert response.body["status"] == "stopping"
    stored = platform.jobs.get(job_id)
    assert stored is not None and stored.stop_requested
    assert orchestrator.stopped == [job_id]


def test_stopping_twice_is_a_conflict() -> None:
    job_id = create().body["job_id"]
    call_api("POST", f"{API}/jobs/{job_id}/stop")
    again = call_api("POST", f"{API}/jobs/{job_id}/stop")
    assert again.status == 409 and again.body["code"] == "illegal_transition"
    assert again.body["message"] == "the job already ended (cancelled); there is nothing to stop"


def test_a_stop_racing_a_completion_loses_cleanly(platform: Platform) -> None:
    job_id = create().body["job_id"]
    for status in (JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING):
        transition(platform, job_id, status)
    transition(platform, job_id, JobStatus.COMPLETED)

    response = call_api("POST", f"{API}/jobs/{job_id}/stop")

    assert response.status == 409
    assert call_api("GET", f"{API}/jobs/{job_id}").body["status"] == "completed"


def test_a_running_job_cannot_be_deleted(platform: Platform) -> None:
    job_id = create().body["job_id"]
    transition(platform, job_id, JobStatus.PREPARING)
    response = call_api("DELETE", f"{API}/jobs/{job_id}")
    assert response.status == 409 and response.body["code"] == "job_active"


def test_delete_removes_the_job_its_logs_metrics_and_files(platform: Platform) -> None:
    job = create().body
    job_id = job["job_id"]
    now = datetime.now(UTC)
    platform.logs.append(job_id, [LogEntry(time=now, source="training", level="info", message="x")])
    platform.jobs.put_metrics(job_id, [MetricPoint(name="loss", step=1, value=1.0, time=now)])
    platform.blobs.put(JobLayout("local", job_id).model_archive, b"model")
    call_api("POST", f"{API}/jobs/{job_id}/stop")

    response = call_api("DELETE", f"{API}/jobs/{job_id}")

    assert response.status == 204
    assert call_api("GET", f"{API}/jobs/{job_id}").status == 404
    assert platform.jobs.query_metrics(job_id, names=None, min_step=None, max_step=None) == []
    assert platform.blobs.list(JobLayout("local", job_id).prefix) == []
    assert platform.blobs.list(JobLayout("local", job_id).datasets) == []
    logs, _ = platform.logs.query(job_id, LogQuery(limit=10))
    assert logs == []


def test_logs_filter_by_source_level_and_time_and_page(platform: Platform) -> None:
    job_id = create().body["job_id"]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    entries = [
        LogEntry(
            time=start + timedelta(seconds=i),
            source=("build", "deployment", "training")[i % 3],
            level=("debug", "info", "warning", "error")[i % 4],
            message=f"line {i}",
        )
        for i in range(24)
    ]
    platform.logs.append(job_id, entries)

    training = call_api("GET", f"{API}/jobs/{job_id}/logs?log_type=training").body["logs"]
    errors = call_api("GET", f"{API}/jobs/{job_id}/logs?level=error").body["logs"]
    window = call_api(
        "GET",
        f"{API}/jobs/{job_id}/logs?start_time=2026-01-01T00:00:05Z&end_time=2026-01-01T00:00:10Z",
    ).body["logs"]
    first = call_api("GET", f"{API}/jobs/{job_id}/logs?limit=10").body
    rest = call_api(
        "GET", f"{API}/jobs/{job_id}/logs?limit=100&next_token={first['next_token']}"
    ).body

    assert len(training) == 8 and all(e["source"] == "training" for e in training)
    assert {e["level"] for e in errors} == {"error"}
    assert [e["message"] for e in window] == [f"line {i}" for i in range(5, 10)]
    assert [e["message"] for e in first["logs"] + rest["logs"]] == [f"line {i}" for i in range(24)]


@pytest.mark.parametrize(
    "query",
    [
        "logs?start_time=2026-01-01T00:00:05",
        "logs?end_time=2026-01-01T00:00:05",
        "?created_after=2026-01-01T00:00:00",
        "?created_before=2026-01-01",
    ],
)
def test_a_time_filter_without_a_time_zone_is_a_400_with_a_message(
    platform: Platform, query: str
) -> None:
    # Given a job with a log line, so a naive time would be compared with an aware one
    job_id = create().body["job_id"]
    platform.logs.append(
        job_id,
        [
            LogEntry(
                time=datetime(2026, 1, 1, tzinfo=UTC), source="build", level="info", message="x"
            )
        ],
    )
    path = f"{API}/jobs/{job_id}/{query}" if query.startswith("logs") else f"{API}/jobs{query}"

    response = call_api("GET", path)

    assert (response.status, response.body["code"]) == (400, "validation_error")
    assert "timezone" in response.body["message"]


def test_metrics_by_name_and_step_range_downsampled(platform: Platform) -> None:
    job_id = create().body["job_id"]
    now = datetime.now(UTC)
    platform.jobs.put_metrics(
        job_id,
        [MetricPoint(name="loss", step=s, value=10 - s / 100, time=now) for s in range(1, 1001)]
        + [MetricPoint(name="learning_rate", step=s, value=1e-4, time=now) for s in range(1, 11)],
    )

    loss = call_api("GET", f"{API}/jobs/{job_id}/metrics?names=loss&max_points=100").body
    window = call_api("GET", f"{API}/jobs/{job_id}/metrics?min_step=5&max_step=7").body

    assert list(loss["series"]) == ["loss"] and len(loss["series"]["loss"]) == 100
    assert loss["series"]["loss"][-1]["step"] == 1000
    assert {n: [p["step"] for p in pts] for n, pts in window["series"].items()} == {
        "learning_rate": [5, 6, 7],
        "loss": [5, 6, 7],
    }


def test_a_typod_metric_name_is_refused_with_the_known_names() -> None:
    job_id = create().body["job_id"]

    response = call_api("GET", f"{API}/jobs/{job_id}/metrics?names=loss,eval_los")

    assert response.status == 422 and response.body["code"] == "unknown_metric"
    assert response.body["message"].startswith(
        "unknown metric 'eval_los'; did you mean 'eval_loss'"
    )
    assert "known metrics: loss, eval_loss" in response.body["message"]


def test_download_waits_for_completion_then_links_the_archive(platform: Platform) -> None:
    job_id = create().body["job_id"]
    early = call_api("GET", f"{API}/jobs/{job_id}/download")
    for status in (JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING):
        transition(platform, job_id, status)
    transition(platform, job_id, JobStatus.COMPLETED)
    platform.blobs.put(JobLayout("local", job_id).model_archive, b"\x1f\x8bmodel")

    link = call_api("GET", f"{API}/jobs/{job_id}/download")
    archive = call_api("GET", link.body["url"])

    assert early.status == 409 and early.body["code"] == "no_artifacts"
    assert link.status == 200 and link.body["expires_in_s"] == 3600
    assert archive.status == 200 and archive.headers["content-type"] == "application/gzip"


def test_stats_count_the_users_jobs(platform: Platform) -> None:
    done = create().body["job_id"]
    create()
    for status in (JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING):
        transition(platform, done, status)
    transition(platform, done, JobStatus.COMPLETED)

    body = call_api("GET", f"{API}/stats").body

    assert body["total_jobs"] == 2
    assert body["jobs_by_status"] == {"completed": 1, "pending": 1}
    assert body["success_rate"] == 1.0


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("POST", "/stop"),
        ("DELETE", ""),
        ("GET", "/logs"),
        ("GET", "/metrics"),
        ("GET", "/download"),
        ("GET", "/download/file"),
    ],
)
def test_another_organizations_job_is_not_found(method: str, suffix: str) -> None:
    job_id = create().body["job_id"]

    theirs = call_api(method, f"{API}/jobs/{job_id}{suffix}", caller=OTHER_ORG)
    missing = call_api(method, f"{API}/jobs/ftjob-missing{suffix}", caller=OTHER_ORG)

    assert theirs.status == missing.status == 404
    assert theirs.body["code"] == missing.body["code"] == "job_not_found"


def test_another_organization_lists_and_counts_none_of_ours() -> None:
    create()
    assert call_api("GET", f"{API}/jobs", caller=OTHER_ORG).body["jobs"] == []
    assert call_api("GET", f"{API}/stats", caller=OTHER_ORG).body["total_jobs"] == 0


def test_a_request_without_identity_is_unauthenticated() -> None:
    response = call_api("GET", f"{API}/jobs", caller=None)
    assert response.status == 401 and response.body["code"] == "unauthenticated"


def test_the_organizations_job_quota_is_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_platform().settings, "max_active_jobs", 2)
    create()
    create()
    response = create()
    assert response.status == 429 and response.body["code"] == "quota_jobs"


def test_the_organizations_gpu_quota_is_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_platform().settings, "max_active_gpus", 3)
    response = create(spec(hardware={"gpu_count": 4}))
    assert response.status == 429 and response.body["code"] == "quota_gpus"
