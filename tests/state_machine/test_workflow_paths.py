"""Every named test case of state_machine/test_cases.json, run through the real ASL: the
exact states entered, and the job record the step handlers left behind."""

from __future__ import annotations

import json
from collections.abc import Callable

import boto3
import pytest
from support.aws_workflow import (
    CALLER,
    TAG,
    new_job,
    push_image,
    trainer_says,
    write_build_log,
    write_model,
)
from support.kube import FakeKube
from support.sfn_mock import TEST_CASES_PATH, MockedStepFunctions, Outcome, wait_for

from whetstone.adapters.aws.kube.shared_manifests import namespace_name
from whetstone.adapters.aws.sfn_orchestrator import StepFunctionsOrchestrator, execution_arn
from whetstone.core.events import TrainerErrorCode, TrainerPhase
from whetstone.core.job import JobRecord, LogSource, utcnow
from whetstone.core.lifecycle import JobStatus as S
from whetstone.core.logs import LogQuery
from whetstone.service.jobs import stop_job
from whetstone.service.platform import Platform

PREPARE = ["Begin", "Prepare", "ResolveImage", "ImageCached"]
BUILD = ["BuildStarted", "BuildImage", "BuildFinished"]
LOOP = ["WaitForTrainer", "Poll", "TrainerState"]
BUILD_STREAM = "0b5e4c1d"  # the stream of the mocked CodeBuild run


class Run:
    """One job through the state machine under a named test case."""

    def __init__(self, platform: Platform, sfn: MockedStepFunctions, arn: str) -> None:
        self.platform, self.sfn, self.arn = platform, sfn, arn
        self.job = new_job(platform)

    @property
    def job_id(self) -> str:
        return self.job.job_id

    def before(self, state: str, invocation: int, hook: Callable[[], object]) -> None:
        self.sfn.before(state, invocation, lambda: None if hook() else None)

    def stop_before(self, state: str, invocation: int = 0) -> None:
        self.before(state, invocation, lambda: stop_job(self.platform, CALLER, self.job_id))

    def execute(self, case: str) -> tuple[Outcome, JobRecord]:
        StepFunctionsOrchestrator(f"{self.arn}#{case}", poll_interval_s=0).start(self.job)
        outcome = wait_for(boto3.client("stepfunctions"), execution_arn(self.arn, self.job_id))
        job = self.platform.jobs.get(self.job_id)
        assert job is not None
        return outcome, job


@pytest.fixture
def run(platform: Platform, sfn: MockedStepFunctions, state_machine_arn: str) -> Run:
    return Run(platform, sfn, state_machine_arn)


def statuses(job: JobRecord) -> list[S]:
    return [change.status for change in job.status_history]


def ran(outcome: Outcome, job: JobRecord) -> tuple[str, list[str], list[S]]:
    """How the execution ended, the states it entered and the statuses the job went through."""
    return outcome.status, outcome.path, statuses(job)


def log_messages(platform: Platform, job_id: str, source: LogSource) -> list[str]:
    entries, _ = platform.logs.query(job_id, LogQuery(source=source, limit=500))
    return [entry.message for entry in entries]


def trains_to_success(run: Run, kube: FakeKube) -> None:
    """The cluster starts the pod, the trainer reports, writes its model and exits 0."""

    def first_poll() -> None:
        kube.start_pod(run.job_id)
        kube.add_event(run.job_id, "Pulled", "pulled the trainer image", utcnow().isoformat())
        trainer_says(run.job_id, TrainerPhase.TRAINING)

    def second_poll() -> None:
        trainer_says(run.job_id, TrainerPhase.EVALUATING)
        write_model(run.platform, run.job)
        kube.finish_job(run.job_id, succeeded=True)

    run.before("Poll", 0, first_poll)
    run.before("Poll", 1, second_poll)


def test_given_every_test_case_when_listed_then_each_has_a_test_here() -> None:
    cases = json.loads(TEST_CASES_PATH.read_text())["StateMachines"]["Whetstone"]["TestCases"]
    assert set(cases) == {
        "HappyPathWithBuild",
        "HappyPathCachedImage",
        "BuildFails",
        "LaunchFails",
        "TrainingFails",
        "TransientErrorsRetried",
        "StopDuringPreparing",
        "StopDuringBuilding",
        "StopDuringDeploying",
        "StopDuringTraining",
    }


def test_given_no_image_when_the_job_runs_then_it_builds_trains_and_completes(
    run: Run, kube: FakeKube
) -> None:
    run.before("BuildImage", 0, push_image)
    run.before("BuildImage", 0, lambda: write_build_log(BUILD_STREAM, ["Step 1/9 : FROM cuda"]))
    trains_to_success(run, kube)

    outcome, job = run.execute("HappyPathWithBuild")

    assert ran(outcome, job) == (
        "SUCCEEDED",
        [*PREPARE, *BUILD, "Launch", *LOOP, *LOOP, "Finalize", "Completed"],
        [S.PENDING, S.PREPARING, S.BUILDING, S.DEPLOYING, S.TRAINING, S.EVALUATING, S.COMPLETED],
    )
    assert job.artifacts is not None and "model/adapter_model.safetensors" in job.artifacts.files
    assert job.cost.current_usd >= 0 and job.progress.fraction == 1.0
    assert job.dataset.num_examples == 120 and job.error is None
    image = kube.job(job.job_id)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith(
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/whetstone-trainer@sha256:"
    )
    assert "Step 1/9 : FROM cuda" in log_messages(run.platform, job.job_id, "build")
    assert "pulled the trainer image" in log_messages(run.platform, job.job_id, "deployment")


def test_given_a_cached_image_when_the_job_runs_then_it_skips_the_build(
    run: Run, kube: FakeKube
) -> None:
    push_image(TAG)
    trains_to_success(run, kube)

    outcome, job = run.execute("HappyPathCachedImage")

    assert ran(outcome, job) == (
        "SUCCEEDED",
        [*PREPARE, "Launch", *LOOP, *LOOP, "Finalize", "Completed"],
        [S.PENDING, S.PREPARING, S.DEPLOYING, S.TRAINING, S.EVALUATING, S.COMPLETED],
    )


def test_given_a_failing_build_when_the_job_runs_then_it_fails_at_build_with_the_build_log(
    run: Run, kube: FakeKube
) -> None:
    run.before("BuildImage", 0, lambda: write_build_log(BUILD_STREAM, ["error: pip failed"]))

    outcome, job = run.execute("BuildFails")

    assert ran(outcome, job) == (
        "FAILED",
        [*PREPARE, "BuildStarted", "BuildImage", "RecordFailure", "Failed"],
        [S.PENDING, S.PREPARING, S.BUILDING, S.FAILED],
    )
    assert job.error is not None
    assert (job.error.code, job.error.step) == ("image_build_failed", "build")
    assert "FAILED" in job.error.message
    assert "error: pip failed" in log_messages(run.platform, job.job_id, "build")
    assert "Job" not in kube.kinds()


def test_given_a_rejected_launch_when_the_job_runs_then_it_fails_at_launch(run: Run) -> None:
    push_image(TAG)

    outcome, job = run.execute("LaunchFails")

    assert ran(outcome, job) == (
        "FAILED",
        [*PREPARE, "Launch", "RecordFailure", "Failed"],
        [S.PENDING, S.PREPARING, S.FAILED],
    )
    assert job.error is not None
    assert (job.error.code, job.error.step) == ("launch_failed", "launch")
    assert "admission webhook" in job.error.message


def test_given_a_trainer_out_of_memory_when_polled_then_the_job_fails_with_its_code(
    run: Run, kube: FakeKube
) -> None:
    push_image(TAG)
    run.before(
        "Poll",
        1,
        lambda: trainer_says(
            run.job_id,
            TrainerPhase.FAILED,
            error_code=TrainerErrorCode.OUT_OF_MEMORY,
            message="CUDA ran out of memory; lower the batch size",
        ),
    )

    outcome, job = run.execute("TrainingFails")

    assert outcome.status == "FAILED"
    assert outcome.path == [
        *PREPARE,
        "Launch",
        *LOOP,
        "WaitForTrainer",
        "Poll",
        "RecordFailure",
        "Failed",
    ]
    assert statuses(job) == [S.PENDING, S.PREPARING, S.DEPLOYING, S.FAILED]
    assert job.error is not None
    assert (job.error.code, job.error.step) == ("out_of_memory", "train")
    namespace = namespace_name(job.org_id, "whetstone-")
    assert ("Job", namespace, job.job_id) in kube.deleted


def test_given_transient_errors_when_retried_then_the_job_completes(
    run: Run, sfn: MockedStepFunctions
) -> None:
    write_model(run.platform, run.job)

    outcome, job = run.execute("TransientErrorsRetried")

    assert outcome.status == "SUCCEEDED"
    assert outcome.path == [*PREPARE, "Launch", *LOOP, *LOOP, "Finalize", "Completed"]
    assert (sfn.visits["ResolveImage"], sfn.visits["Poll"]) == (3, 3)
    # two throttles (interval 2 s, then 4 s) and one API outage (5 s), each with full jitter
    assert len(sfn.retry_sleeps) == 3
    assert all(0 <= s <= limit for s, limit in zip(sfn.retry_sleeps, (2, 4, 5), strict=True))
    assert job.status is S.COMPLETED


def test_given_a_stop_while_preparing_when_the_step_ends_then_the_job_is_cancelled(
    run: Run, kube: FakeKube
) -> None:
    run.stop_before("ResolveImage")

    outcome, job = run.execute("StopDuringPreparing")

    assert ran(outcome, job) == (
        "SUCCEEDED",
        ["Begin", "Prepare", "ResolveImage", "Cancel", "Cancelled"],
        [S.PENDING, S.PREPARING, S.STOPPING, S.CANCELLED],
    )
    assert job.stop_requested and "Job" not in kube.kinds()


def test_given_a_stop_while_building_when_the_build_ends_then_the_job_is_cancelled(
    run: Run, kube: FakeKube
) -> None:
    run.before("BuildImage", 0, push_image)
    run.stop_before("BuildImage")

    outcome, job = run.execute("StopDuringBuilding")

    assert ran(outcome, job) == (
        "SUCCEEDED",
        [*PREPARE, *BUILD, "Cancel", "Cancelled"],
        [S.PENDING, S.PREPARING, S.BUILDING, S.STOPPING, S.CANCELLED],
    )
    assert "Job" not in kube.kinds()


def test_given_a_stop_while_deploying_when_polled_then_the_kubernetes_job_is_deleted(
    run: Run, kube: FakeKube
) -> None:
    push_image(TAG)
    run.stop_before("Poll", 0)

    outcome, job = run.execute("StopDuringDeploying")

    assert ran(outcome, job) == (
        "SUCCEEDED",
        [*PREPARE, "Launch", *LOOP, "Cancel", "Cancelled"],
        [S.PENDING, S.PREPARING, S.DEPLOYING, S.STOPPING, S.CANCELLED],
    )
    namespace = namespace_name(job.org_id, "whetstone-")
    assert ("Job", namespace, job.job_id) in kube.deleted
    assert ("ServiceAccount", namespace, job.job_id) in kube.deleted


def test_given_a_stop_while_training_when_polled_then_the_job_is_cancelled(
    run: Run, kube: FakeKube
) -> None:
    push_image(TAG)

    def training() -> None:
        kube.start_pod(run.job_id)
        trainer_says(run.job_id, TrainerPhase.TRAINING)

    run.before("Poll", 0, training)
    run.stop_before("Poll", 1)

    outcome, job = run.execute("StopDuringTraining")

    assert ran(outcome, job) == (
        "SUCCEEDED",
        [*PREPARE, "Launch", *LOOP, *LOOP, "Cancel", "Cancelled"],
        [S.PENDING, S.PREPARING, S.DEPLOYING, S.TRAINING, S.STOPPING, S.CANCELLED],
    )
    assert "Job" not in kube.kinds()
