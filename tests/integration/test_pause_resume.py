"""Pause, resume and budgets through the API handler, on the local stores; the workflow is
recorded (tests/e2e/test_local_runtime.py pauses a real trainer)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from support.apigw import ApiResponse, call_api, multipart
from support.clients import Result
from support.jobs import RecordingOrchestrator

from whetstone.cli.tokens import DEFAULT_CALLER
from whetstone.client import WhetstoneClient
from whetstone.core.events import MetricsDetail, make_event
from whetstone.core.job import JobRecord, Progress, utcnow
from whetstone.core.lifecycle import JobStatus
from whetstone.core.logs import LogQuery
from whetstone.ports import ComputeState, ComputeStatus
from whetstone.runtime import get_platform
from whetstone.service import workflow
from whetstone.service.ingest import ingest_event
from whetstone.service.pausing import pause
from whetstone.service.records import transition, update_job
from whetstone.settings import get_settings

API = "/api/v1/fine-tuning"
MODEL = "qwen2.5-0.5b-instruct"


def dataset(count: int = 120) -> bytes:
    rows = [{"instruction": f"Say {i}", "input": "", "output": f"{i}"} for i in range(count)]
    return "\n".join(json.dumps(row) for row in rows).encode()


def create(config: dict[str, Any] | None = None) -> ApiResponse:
    body, content_type = multipart(
        {"config": json.dumps(config or {"base_model": MODEL, "method": "lora"})},
        {"file": ("train.jsonl", dataset())},
    )
    return call_api("POST", f"{API}/jobs", body=body, headers={"content-type": content_type})


def training_job(*, hours_ago: float = 0.0, cap: float | None = None) -> str:
    spec: dict[str, Any] = {"base_model": MODEL, "method": "lora"}
    if cap is not None:
        spec["hardware"] = {"max_cost_usd": cap}
    job_id = str(create(spec).body["job_id"])
    platform = get_platform()
    for status in (JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING):
        transition(platform, job_id, status)
    started = utcnow() - timedelta(hours=hours_ago)
    update_job(
        platform, job_id, lambda job: job.model_copy(update={"training_started_at": started})
    )
    return job_id


def post(job_id: str, action: str, query: str = "") -> ApiResponse:
    return call_api("POST", f"{API}/jobs/{job_id}/{action}{query}")


class StoppedTrainer:
    """The compute of a trainer that checkpoints and exits when stopped."""

    def __init__(self) -> None:
        self.stopped: list[str] = []

    def launch(self, job: JobRecord, plan_uri: str, image: str, stage: Any = None) -> None: ...

    def status(self, job: JobRecord, stage: Any = None) -> ComputeStatus:
        return ComputeStatus(state=ComputeState.MISSING)

    def stop(self, job: JobRecord) -> None:
        self.stopped.append(job.job_id)


@pytest.fixture
def hourly_rate(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setenv("WHETSTONE_LOCAL_HOURLY_RATE_USD", "2.0")
    get_settings.cache_clear()
    get_platform.cache_clear()
    return 2.0


def monthly_budget(monkeypatch: pytest.MonkeyPatch, usd: float) -> None:
    """The caller's organization has a monthly budget of `usd`."""
    monkeypatch.setenv("WHETSTONE_ORG_MONTHLY_BUDGET_USD", json.dumps({DEFAULT_CALLER.org_id: usd}))
    get_settings.cache_clear()
    get_platform.cache_clear()


def test_given_a_training_job_when_paused_then_it_is_pausing_and_its_workflow_is_told(
    orchestrator: RecordingOrchestrator,
) -> None:
    job_id = training_job()

    response = post(job_id, "pause")

    assert response.status == 200 and response.body["status"] == "pausing"
    assert orchestrator.paused == [job_id]


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.EVALUATING])
def test_given_a_job_not_deploying_or_training_when_paused_then_409_not_pausable(
    status: JobStatus, orchestrator: RecordingOrchestrator
) -> None:
    job_id = str(create().body["job_id"])
    if status is JobStatus.EVALUATING:
        job_id = training_job()
        transition(get_platform(), job_id, JobStatus.EVALUATING)

    response = post(job_id, "pause")

    assert response.status == 409 and response.body["code"] == "not_pausable"
    assert orchestrator.paused == []


def test_given_a_job_not_paused_when_resumed_then_409_not_paused() -> None:
    response = post(training_job(), "resume")

    assert response.status == 409 and response.body["code"] == "not_paused"


def test_given_a_pausing_job_when_its_trainer_stopped_then_it_is_paused_and_resumes_deploying(
    orchestrator: RecordingOrchestrator,
) -> None:
    # Given a training job asked to pause
    job_id = training_job()
    post(job_id, "pause")
    trainer = StoppedTrainer()

    # When the workflow's pause step runs, then the trainer was stopped and the job is paused
    paused = pause(get_platform(), job_id, trainer)
    assert trainer.stopped == [job_id] and paused.status is JobStatus.PAUSED
    logs, _ = get_platform().logs.query(job_id, LogQuery())
    assert "job paused" in [entry.message for entry in logs]

    # When it is resumed, then it goes back to deploying and its workflow relaunches it
    response = post(job_id, "resume")
    assert response.status == 200 and response.body["status"] == "deploying"
    assert orchestrator.resumed == [job_id]
    statuses = [h["status"] for h in response.body["status_history"]]
    assert statuses[-4:] == ["training", "pausing", "paused", "deploying"]


def test_given_a_paused_job_when_stopped_then_it_is_cancelled_at_once() -> None:
    job_id = training_job()
    post(job_id, "pause")
    pause(get_platform(), job_id, StoppedTrainer())

    response = post(job_id, "stop")

    assert response.status == 200 and response.body["status"] == "cancelled"
    logs, _ = get_platform().logs.query(job_id, LogQuery())
    assert [entry.fields["status"] for entry in logs if entry.message == "job ended"] == [
        "cancelled"
    ]


def test_given_a_job_at_its_cost_cap_when_the_trainer_reports_then_it_pauses_saying_why(
    hourly_rate: float, orchestrator: RecordingOrchestrator
) -> None:
    # Given a job capped at $1 whose trainer started an hour ago at $2/h
    job_id = training_job(hours_ago=1.0, cap=1.0)
    detail = MetricsDetail(step=5, max_steps=100, epoch=0.1, progress=0.05, loss=1.0)

    # When its trainer reports a step
    ingest_event(get_platform(), make_event(job_id, detail))

    # Then the job is pausing (not failed), its workflow told, with the reason recorded
    job = get_platform().jobs.get(job_id)
    assert job is not None and job.status is JobStatus.PAUSING
    assert orchestrator.paused == [job_id]
    reason = job.status_history[-1].message or ""
    assert "cost cap reached" in reason and "max_cost_usd $1.00" in reason
    logs, _ = get_platform().logs.query(job_id, LogQuery())
    assert any("cost cap reached" in str(entry.fields.get("reason")) for entry in logs)


def test_given_a_job_paused_at_its_cap_when_resumed_then_it_needs_a_higher_cap(
    hourly_rate: float,
) -> None:
    job_id = training_job(hours_ago=1.0, cap=1.0)
    post(job_id, "pause")
    pause(get_platform(), job_id, StoppedTrainer())

    refused = post(job_id, "resume")
    resumed = post(job_id, "resume", "?max_cost_usd=5")

    assert refused.status == 409 and refused.body["code"] == "cost_cap_reached"
    assert resumed.status == 200 and resumed.body["status"] == "deploying"
    assert resumed.body["spec"]["hardware"]["max_cost_usd"] == 5


def test_given_a_month_spent_past_the_budget_when_a_job_is_created_then_402_with_the_figures(
    monkeypatch: pytest.MonkeyPatch, hourly_rate: float, orchestrator: RecordingOrchestrator
) -> None:
    # Given a $1 monthly budget and a job of this month that has run an hour at $2/h
    monthly_budget(monkeypatch, 1)
    training_job(hours_ago=1.0)

    # When another job is created, then it is refused with the figures and not started
    refused = create()
    assert refused.status == 402 and refused.body["code"] == "budget_exceeded"
    figures = refused.body["details"]
    assert figures["budget_usd"] == 1 and figures["remaining_usd"] == 0
    assert figures["spent_usd"] == pytest.approx(2.0, rel=0.01)
    assert "allow_over_budget" in refused.body["message"] and len(orchestrator.started) == 1

    # When the request says to proceed, then it is created
    allowed = create({"base_model": MODEL, "method": "lora", "allow_over_budget": True})
    assert allowed.status == 201 and len(orchestrator.started) == 2


def test_given_a_paused_job_whose_remaining_estimate_passes_the_budget_when_resumed_then_402(
    monkeypatch: pytest.MonkeyPatch, hourly_rate: float, orchestrator: RecordingOrchestrator
) -> None:
    # Given a $3 monthly budget and a job paused half-way after an hour at $2/h: $2 spent,
    # $2 more to come
    monthly_budget(monkeypatch, 3)
    job_id = training_job(hours_ago=1.0)
    half_way = Progress(step=50, max_steps=100, epoch=0.5, fraction=0.5)
    update_job(get_platform(), job_id, lambda job: job.model_copy(update={"progress": half_way}))
    post(job_id, "pause")
    pause(get_platform(), job_id, StoppedTrainer())

    # When it is resumed, then it is refused with the figures and stays paused
    refused = post(job_id, "resume")
    assert refused.status == 402 and refused.body["code"] == "budget_exceeded"
    figures = refused.body["details"]
    assert figures["budget_usd"] == 3 and figures["spent_usd"] == pytest.approx(2.0, rel=0.01)
    assert figures["estimate_usd"] == pytest.approx(2.0, rel=0.01)
    assert "remaining estimated" in refused.body["message"]
    assert "allow_over_budget to resume" in refused.body["message"]
    assert get_platform().jobs.get(job_id).status is JobStatus.PAUSED  # type: ignore[union-attr]

    # When the request says to proceed, then it resumes
    allowed = post(job_id, "resume", "?allow_over_budget=true")
    assert allowed.status == 200 and allowed.body["status"] == "deploying"


def test_whet_jobs_pause_and_resume_over_http(
    whet: Callable[..., Result], orchestrator: RecordingOrchestrator
) -> None:
    # Given a training job
    job_id = training_job()

    # When `whet jobs pause` runs, then the job is pausing
    paused = whet("jobs", "pause", job_id)
    assert paused.code == 0 and f"{job_id} pausing" in paused.out

    # When its trainer has stopped and `whet jobs resume --max-cost-usd 3 --json` runs
    pause(get_platform(), job_id, StoppedTrainer())
    resumed = whet("jobs", "resume", job_id, "--max-cost-usd", "3", "--json")

    # Then it is deploying again under the new cap, and a second resume is refused
    assert resumed.code == 0 and resumed.json()["status"] == "deploying"
    assert resumed.json()["spec"]["hardware"]["max_cost_usd"] == 3
    again = whet("jobs", "resume", job_id)
    assert again.code != 0 and "only a paused job can be resumed" in again.err


def test_the_sdk_pauses_and_resumes_a_job(
    client: WhetstoneClient, orchestrator: RecordingOrchestrator
) -> None:
    job = client.job(training_job())

    assert job.pause().status == "pausing"
    pause(get_platform(), job.job_id, StoppedTrainer())
    assert job.resume().status == "deploying"
    assert orchestrator.paused == orchestrator.resumed == [job.job_id]


def test_given_a_resumed_job_paused_again_before_its_launch_then_the_launch_pauses_it() -> None:
    # Given a paused job, resumed, then paused again while waiting for its launch
    job_id = training_job()
    post(job_id, "pause")
    pause(get_platform(), job_id, StoppedTrainer())
    post(job_id, "resume")
    post(job_id, "pause")
    trainer = StoppedTrainer()

    # When the workflow launches it, then it raises JobPaused and launches nothing
    with pytest.raises(workflow.JobPaused):
        workflow.launch(get_platform(), job_id, trainer, "plan-uri", "image")
    assert pause(get_platform(), job_id, trainer).status is JobStatus.PAUSED
