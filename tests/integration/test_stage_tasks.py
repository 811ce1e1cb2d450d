"""Answering the workflow's wait for a trainer stage (aws, under moto): ingest, the
reconciler and the failure a timeout records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import boto3
import pytest
from support.aws_workflow import ACCOUNT, eventbridge_event, new_job, trainer_says
from support.platform import use_ports

from functions import ingest
from whetstone.core.events import (
    MetricsDetail,
    TrainerErrorCode,
    TrainerPhase,
    TrainerStage,
    make_event,
)
from whetstone.core.job import JobRecord, utcnow
from whetstone.core.lifecycle import JobStatus
from whetstone.service.platform import Platform
from whetstone.service.reconcile import reconcile
from whetstone.service.records import update_job
from whetstone.service.state_machine_steps import failure_of

TOKEN = "token-of-the-stage"


@dataclass
class RecordingCallbacks:
    """The orchestrator's TaskCallbacks (and the reconciler's WorkflowRuns), recorded."""

    running_jobs: dict[str, str] = field(default_factory=dict)
    answers: list[tuple[str, ...]] = field(default_factory=list)

    def start(self, job: JobRecord) -> None: ...

    def stop(self, job: JobRecord) -> None: ...

    def pause(self, job: JobRecord) -> None: ...

    def resume(self, job: JobRecord) -> None: ...

    def complete_task(self, token: str, output: dict[str, object]) -> None:
        self.answers.append(("success", token, json.dumps(output)))

    def fail_task(self, token: str, error: str, cause: str) -> None:
        self.answers.append(("failure", token, error, cause))

    def heartbeat(self, token: str) -> None:
        self.answers.append(("heartbeat", token))

    def running(self) -> dict[str, str]:
        return self.running_jobs

    def restart(self, job: JobRecord) -> None: ...

    def abort(self, execution: str, reason: str) -> None: ...


@pytest.fixture
def callbacks(
    monkeypatch: pytest.MonkeyPatch, aws_platform: Platform
) -> Iterator[RecordingCallbacks]:
    recording = RecordingCallbacks()
    use_ports(monkeypatch, orchestrator=recording)
    yield recording


@pytest.fixture
def platform(aws_platform: Platform, callbacks: RecordingCallbacks) -> Platform:
    from whetstone import runtime

    return runtime.get_platform()


def waiting_on(platform: Platform, stage: TrainerStage, age_s: int = 0) -> JobRecord:
    """A job whose workflow waits on `stage`, last changed `age_s` ago."""
    job = new_job(platform)

    def waiting(current: JobRecord) -> JobRecord:
        moved = current.with_status(JobStatus.PREPARING).with_status(JobStatus.DEPLOYING)
        return moved.model_copy(
            update={
                "task_token": TOKEN,
                "task_stage": stage,
                "updated_at": utcnow() - timedelta(seconds=age_s),
            }
        )

    return update_job(platform, job.job_id, waiting)


def test_given_the_train_stage_waited_on_when_it_says_done_then_its_task_succeeds_once(
    platform: Platform, callbacks: RecordingCallbacks
) -> None:
    job = waiting_on(platform, TrainerStage.TRAIN)

    trainer_says(job.job_id, TrainerPhase.DONE)
    trainer_says(job.job_id, TrainerPhase.DONE)  # EventBridge delivers at least once

    assert callbacks.answers == [("success", TOKEN, '{"stage": "train"}')]
    stored = platform.jobs.get(job.job_id)
    assert stored is not None and stored.task_token is None and stored.task_stage is None


def test_given_the_train_stage_waited_on_when_a_late_prepare_event_comes_then_nothing_is_answered(
    platform: Platform, callbacks: RecordingCallbacks
) -> None:
    job = waiting_on(platform, TrainerStage.TRAIN)

    trainer_says(job.job_id, TrainerPhase.DONE, stage=TrainerStage.PREPARE)
    trainer_says(job.job_id, TrainerPhase.INTERRUPTED)  # its pod is retried by its Job

    assert callbacks.answers == []


def test_given_a_stage_that_fails_when_it_says_so_then_its_task_fails_with_the_trainer_code(
    platform: Platform, callbacks: RecordingCallbacks
) -> None:
    job = waiting_on(platform, TrainerStage.PREPARE)

    trainer_says(
        job.job_id,
        TrainerPhase.FAILED,
        stage=TrainerStage.PREPARE,
        error_code=TrainerErrorCode.DATA_ERROR,
        message="line 7 is not JSON",
    )

    assert callbacks.answers == [("failure", TOKEN, "data_error", "line 7 is not JSON")]
    stored = platform.jobs.get(job.job_id)
    assert stored is not None and stored.error is not None and stored.error.step == "prepare"


def test_given_training_when_metrics_come_then_each_is_a_heartbeat(
    platform: Platform, callbacks: RecordingCallbacks
) -> None:
    job = waiting_on(platform, TrainerStage.TRAIN)
    metrics = MetricsDetail(step=10, max_steps=100, epoch=0.1, progress=0.1, loss=1.0)

    ingest.handler(eventbridge_event(make_event(job.job_id, metrics)))

    assert callbacks.answers == [("heartbeat", TOKEN)]


def test_given_a_waited_on_stage_whose_job_is_gone_when_reconciled_then_its_task_fails(
    platform: Platform, callbacks: RecordingCallbacks
) -> None:
    job = waiting_on(platform, TrainerStage.TRAIN, age_s=3600)
    fresh = waiting_on(platform, TrainerStage.TRAIN, age_s=0)  # its Job may be just applied
    callbacks.running_jobs = {job.job_id: "execution-1", fresh.job_id: "execution-2"}
    from whetstone import runtime

    reconcile(platform, callbacks, runtime.get_aws_workflow_ports().compute)

    assert callbacks.answers == [
        ("failure", TOKEN, "trainer_lost", "the train stage's pod is gone (no Kubernetes Job)")
    ]


def test_given_a_silent_trainer_when_its_heartbeat_times_out_then_the_job_says_unresponsive() -> (
    None
):
    error = failure_of("train", "States.HeartbeatTimeout", None)

    assert (error.code, error.step) == ("trainer_unresponsive", "train")
    assert "no metrics for 30 minutes" in error.message


def test_given_a_stage_error_code_when_recorded_then_it_is_the_job_s_code() -> None:
    error = failure_of("train", "out_of_memory", "CUDA ran out of memory")

    assert (error.code, error.step, error.message) == (
        "out_of_memory",
        "train",
        "CUDA ran out of memory",
    )


def test_given_a_stop_while_a_stage_runs_then_the_orchestrator_fails_its_task_as_stopped(
    aws_platform: Platform,
) -> None:
    from whetstone.adapters.aws.sfn_orchestrator import StepFunctionsOrchestrator

    sent: list[dict[str, str]] = []
    client = boto3.client("stepfunctions")
    client.meta.events.register(
        "provide-client-params.sfn.SendTaskFailure", lambda params, **_: sent.append(dict(params))
    )
    orchestrator = StepFunctionsOrchestrator(
        f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:Whetstone", client=client
    )
    job = waiting_on(aws_platform, TrainerStage.FINALIZE)

    orchestrator.stop(job)  # moto knows no such token: the answer is dropped, not raised

    assert sent == [{"taskToken": TOKEN, "error": "JobStopped", "cause": "stop requested"}]
