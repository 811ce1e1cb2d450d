"""Pause and resume through the real ASL: a pause ends the train stage's wait and the
execution (a paused job holds none), a resume starts a new execution that goes straight
to the train stage, and a stop while paused cancels the job without any execution."""

from __future__ import annotations

from collections.abc import Callable

import boto3
from support.aws_workflow import (
    CALLER,
    TAG,
    new_job,
    push_image,
    trainer_says,
    write_model,
    write_prepared,
)
from support.kube import FakeKube
from support.sfn_mock import MockedStepFunctions, Outcome, wait_for

from whetstone.adapters.aws.sfn_orchestrator import (
    RESTART_MARK,
    StepFunctionsOrchestrator,
    execution_arn,
)
from whetstone.core.events import TrainerPhase, TrainerStage
from whetstone.core.job import JobRecord
from whetstone.core.lifecycle import JobStatus as S
from whetstone.service.jobs import pause_job, resume_job, stop_job
from whetstone.service.platform import Platform

PLAN = ["Begin", "WritePlan", "ResolveImage", "ImageCached"]


def after_stage(sfn: MockedStepFunctions, invocation: int, hook: Callable[[], object]) -> None:
    """Run `hook` once the RunStage Lambda's `invocation` (0-based) started its stage."""
    sfn.after("RunStage", invocation, lambda: None if hook() else None)


def paused_job(
    platform: Platform, sfn: MockedStepFunctions, state_machine_arn: str, kube: FakeKube
) -> tuple[Outcome, JobRecord]:
    """A job paused while its trainer trains: the first execution, ended."""
    push_image(TAG)
    job = new_job(platform)

    def prepared() -> None:
        write_prepared(platform, job)
        trainer_says(job.job_id, TrainerPhase.DONE, stage=TrainerStage.PREPARE)

    def training_then_paused() -> None:
        kube.start_pod(job.job_id)
        trainer_says(job.job_id, TrainerPhase.TRAINING)
        pause_job(platform, CALLER, job.job_id)

    after_stage(sfn, 0, prepared)
    after_stage(sfn, 1, training_then_paused)
    StepFunctionsOrchestrator(f"{state_machine_arn}#PauseDuringTraining").start(job)
    outcome = wait_for(boto3.client("stepfunctions"), execution_arn(state_machine_arn, job.job_id))
    stored = platform.jobs.get(job.job_id)
    assert stored is not None
    return outcome, stored


def test_given_a_pause_while_training_then_the_wait_ends_and_the_execution_ends_paused(
    platform: Platform, sfn: MockedStepFunctions, state_machine_arn: str, kube: FakeKube
) -> None:
    outcome, job = paused_job(platform, sfn, state_machine_arn, kube)

    assert outcome.status == "SUCCEEDED"
    assert outcome.path == [*PLAN, "RunPrepare", "RecordPrepared", "RunTraining", "Pause", "Paused"]
    assert [c.status for c in job.status_history][-4:] == [
        S.DEPLOYING,
        S.TRAINING,
        S.PAUSING,
        S.PAUSED,
    ]
    assert job.task_token is None and "Job" not in kube.kinds()


def test_given_a_paused_job_when_resumed_then_a_new_execution_trains_and_completes_it(
    platform: Platform, sfn: MockedStepFunctions, state_machine_arn: str, kube: FakeKube
) -> None:
    # Given a job paused while training
    _, job = paused_job(platform, sfn, state_machine_arn, kube)

    # When it is resumed and its trainer, started again, finishes
    def trained() -> None:
        kube.start_pod(job.job_id)
        trainer_says(job.job_id, TrainerPhase.TRAINING)
        write_model(platform, job)
        trainer_says(job.job_id, TrainerPhase.DONE)

    after_stage(sfn, 2, trained)
    after_stage(
        sfn, 3, lambda: trainer_says(job.job_id, TrainerPhase.DONE, stage=TrainerStage.FINALIZE)
    )
    resume_job(platform, CALLER, job.job_id)

    # Then a second execution went from the plan and image straight to the train stage
    client = boto3.client("stepfunctions")
    (resumed,) = [
        execution["executionArn"]
        for execution in client.list_executions(stateMachineArn=state_machine_arn)["executions"]
        if execution["name"].startswith(f"{job.job_id}{RESTART_MARK}")
    ]
    outcome = wait_for(client, resumed)
    assert outcome.status == "SUCCEEDED"
    assert outcome.path == [*PLAN, "RunTraining", "RunFinalize", "Complete", "Completed"]
    done = platform.jobs.get(job.job_id)
    assert done is not None and done.status is S.COMPLETED
    assert [c.status for c in done.status_history][-4:] == [
        S.PAUSED,
        S.DEPLOYING,
        S.TRAINING,
        S.COMPLETED,
    ]


def test_given_a_paused_job_when_stopped_then_it_is_cancelled_at_once(
    platform: Platform, sfn: MockedStepFunctions, state_machine_arn: str, kube: FakeKube
) -> None:
    _, job = paused_job(platform, sfn, state_machine_arn, kube)

    stopped = stop_job(platform, CALLER, job.job_id)

    assert stopped.status is S.CANCELLED
    running = boto3.client("stepfunctions").list_executions(
        stateMachineArn=state_machine_arn, statusFilter="RUNNING"
    )
    assert running["executions"] == []
