"""Every named test case of state_machine/test_cases.json, run through the real ASL: the
exact states entered, and the job record the step handlers left behind. The trainer's
stages answer the workflow's waits through their status events (EventBridge → ingest →
SendTaskSuccess/SendTaskFailure), as on aws."""

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
    write_prepared,
)
from support.kube import FakeKube
from support.sfn_mock import TEST_CASES_PATH, MockedStepFunctions, Outcome, wait_for

from whetstone.adapters.aws.kube.shared_manifests import namespace_name
from whetstone.adapters.aws.sfn_orchestrator import StepFunctionsOrchestrator, execution_arn
from whetstone.core.events import TrainerErrorCode, TrainerPhase, TrainerStage
from whetstone.core.job import JobRecord, LogSource, utcnow
from whetstone.core.lifecycle import JobStatus as S
from whetstone.core.logs import LogQuery
from whetstone.service.jobs import stop_job
from whetstone.service.platform import Platform

PLAN = ["Begin", "WritePlan", "ResolveImage", "ImageCached"]
BUILD = ["BuildStarted", "BuildImage", "BuildFinished"]
STAGES = ["RunPrepare", "RecordPrepared", "RunTraining", "RunFinalize", "Complete"]
BUILD_STREAM = "0b5e4c1d"  # the stream of the mocked CodeBuild run
# The RunStage Lambda's invocation (0-based) that starts each stage.
STAGE_INVOCATION = {TrainerStage.PREPARE: 0, TrainerStage.TRAIN: 1, TrainerStage.FINALIZE: 2}


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
        self.before(state, invocation, self.stop)

    def stop(self) -> None:
        stop_job(self.platform, CALLER, self.job_id)

    def once_started(self, stage: TrainerStage, hook: Callable[[], object]) -> None:
        """Run `hook` once the stage's Kubernetes Job is applied and the workflow waits."""
        self.sfn.after("RunStage", STAGE_INVOCATION[stage], lambda: None if hook() else None)

    def execute(self, case: str) -> tuple[Outcome, JobRecord]:
        StepFunctionsOrchestrator(f"{self.arn}#{case}").start(self.job)
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


def prepares(run: Run) -> None:
    """The prepare stage splits the dataset, writes prepared.json and says done."""

    def prepare() -> None:
        write_prepared(run.platform, run.job)
        trainer_says(run.job_id, TrainerPhase.DONE, stage=TrainerStage.PREPARE)

    run.once_started(TrainerStage.PREPARE, prepare)


def trains(run: Run, kube: FakeKube) -> None:
    """The pod starts, the trainer trains and evaluates (the stage still runs after)."""

    def train() -> None:
        kube.start_pod(run.job_id)
        kube.add_event(run.job_id, "Pulled", "pulled the trainer image", utcnow().isoformat())
        trainer_says(run.job_id, TrainerPhase.TRAINING)
        trainer_says(run.job_id, TrainerPhase.EVALUATING)

    run.once_started(TrainerStage.TRAIN, train)


def runs_to_success(run: Run, kube: FakeKube) -> None:
    """Every stage succeeds: the trainer writes its model, finalize archives it."""
    prepares(run)
    trains(run, kube)

    def trained() -> None:
        write_model(run.platform, run.job)
        trainer_says(run.job_id, TrainerPhase.DONE)

    run.once_started(TrainerStage.TRAIN, trained)
    run.once_started(
        TrainerStage.FINALIZE,
        lambda: trainer_says(run.job_id, TrainerPhase.DONE, stage=TrainerStage.FINALIZE),
    )


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
        "StopDuringFinalizing",
        # tests/state_machine/test_pause_paths.py
        "PauseDuringTraining",
    }


def test_given_no_image_when_the_job_runs_then_it_builds_runs_each_stage_and_completes(
    run: Run, kube: FakeKube
) -> None:
    run.before("BuildImage", 0, push_image)
    run.before("BuildImage", 0, lambda: write_build_log(BUILD_STREAM, ["Step 1/9 : FROM cuda"]))
    runs_to_success(run, kube)

    outcome, job = run.execute("HappyPathWithBuild")

    assert ran(outcome, job) == (
        "SUCCEEDED",
        [*PLAN, *BUILD, *STAGES, "Completed"],
        [S.PENDING, S.PREPARING, S.BUILDING, S.DEPLOYING, S.TRAINING, S.EVALUATING, S.COMPLETED],
    )
    assert job.artifacts is not None and "model/adapter_model.safetensors" in job.artifacts.files
    assert job.cost.current_usd >= 0 and job.progress.fraction == 1.0
    assert job.dataset.num_examples == 120 and job.error is None
    assert job.task_token is None and job.task_stage is None
    image = kube.job(job.job_id)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith(
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/whetstone-trainer@sha256:"
    )
    assert "Step 1/9 : FROM cuda" in log_messages(run.platform, job.job_id, "build")


def test_given_a_job_when_its_stages_run_then_prepare_and_finalize_run_on_cpu_nodes(
    run: Run, kube: FakeKube
) -> None:
    push_image(TAG)
    runs_to_success(run, kube)

    outcome, job = run.execute("HappyPathCachedImage")

    namespace = namespace_name(job.org_id, "whetstone-")
    names = {name for kind, ns, name in kube.objects if kind == "Job" and ns == namespace}
    assert names == {job.job_id, f"{job.job_id}-prepare", f"{job.job_id}-finalize"}
    for stage in ("prepare", "finalize"):
        pod = kube.objects[("Job", namespace, f"{job.job_id}-{stage}")]["spec"]["template"]
        container = pod["spec"]["containers"][0]
        assert container["args"][0] == stage
        assert "nvidia.com/gpu" not in container["resources"]["requests"]
        assert pod["spec"]["nodeSelector"]["whetstone.dev/pool"] == "cpu"


def test_given_a_cached_image_when_the_job_runs_then_it_skips_the_build(
    run: Run, kube: FakeKube
) -> None:
    push_image(TAG)
    runs_to_success(run, kube)

    outcome, job = run.execute("HappyPathCachedImage")

    assert ran(outcome, job) == (
        "SUCCEEDED",
        [*PLAN, *STAGES, "Completed"],
        [S.PENDING, S.PREPARING, S.DEPLOYING, S.TRAINING, S.EVALUATING, S.COMPLETED],
    )


def test_given_a_failing_build_when_the_job_runs_then_it_fails_at_build_with_the_build_log(
    run: Run, kube: FakeKube
) -> None:
    run.before("BuildImage", 0, lambda: write_build_log(BUILD_STREAM, ["error: pip failed"]))

    outcome, job = run.execute("BuildFails")

    assert ran(outcome, job) == (
        "FAILED",
        [*PLAN, "BuildStarted", "BuildImage", "RecordFailure", "Failed"],
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
        [*PLAN, "RunPrepare", "RecordFailure", "Failed"],
        [S.PENDING, S.PREPARING, S.FAILED],
    )
    assert job.error is not None
    assert (job.error.code, job.error.step) == ("launch_failed", "launch")
    assert "admission webhook" in job.error.message


def test_given_a_trainer_out_of_memory_when_it_says_so_then_the_job_fails_with_its_code(
    run: Run, kube: FakeKube
) -> None:
    push_image(TAG)
    prepares(run)
    trains(run, kube)
    run.once_started(
        TrainerStage.TRAIN,
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
        *PLAN,
        "RunPrepare",
        "RecordPrepared",
        "RunTraining",
        "RecordFailure",
        "Failed",
    ]
    assert statuses(job) == [
        S.PENDING,
        S.PREPARING,
        S.DEPLOYING,
        S.TRAINING,
        S.EVALUATING,
        S.FAILED,
    ]
    assert job.error is not None
    assert (job.error.code, job.error.step) == ("out_of_memory", "train")
    assert job.error.message == "CUDA ran out of memory; lower the batch size"
    namespace = namespace_name(job.org_id, "whetstone-")
    assert ("Job", namespace, job.job_id) in kube.deleted


def test_given_transient_errors_when_retried_then_the_job_completes(
    run: Run, kube: FakeKube, sfn: MockedStepFunctions
) -> None:
    runs_to_success(run, kube)

    outcome, job = run.execute("TransientErrorsRetried")

    assert outcome.status == "SUCCEEDED"
    assert outcome.path == [*PLAN, *STAGES, "Completed"]
    assert (sfn.visits["ResolveImage"], sfn.visits["RecordPrepared"]) == (3, 2)
    # two throttles (interval 2 s, then 4 s) and one DynamoDB throttle (5 s), full jitter
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
        ["Begin", "WritePlan", "ResolveImage", "Cancel", "Cancelled"],
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
        [*PLAN, *BUILD, "Cancel", "Cancelled"],
        [S.PENDING, S.PREPARING, S.BUILDING, S.STOPPING, S.CANCELLED],
    )
    assert "Job" not in kube.kinds()


def test_given_a_stop_while_the_prepare_stage_runs_then_its_wait_ends_and_its_job_is_deleted(
    run: Run, kube: FakeKube
) -> None:
    push_image(TAG)
    run.once_started(TrainerStage.PREPARE, run.stop)

    outcome, job = run.execute("StopDuringDeploying")

    assert ran(outcome, job) == (
        "SUCCEEDED",
        [*PLAN, "RunPrepare", "Cancel", "Cancelled"],
        [S.PENDING, S.PREPARING, S.DEPLOYING, S.STOPPING, S.CANCELLED],
    )
    namespace = namespace_name(job.org_id, "whetstone-")
    assert ("Job", namespace, f"{job.job_id}-prepare") in kube.deleted
    assert ("ServiceAccount", namespace, job.job_id) in kube.deleted


def test_given_a_stop_while_training_then_the_wait_ends_and_the_job_is_cancelled(
    run: Run, kube: FakeKube
) -> None:
    push_image(TAG)
    prepares(run)
    trains(run, kube)
    run.once_started(TrainerStage.TRAIN, run.stop)

    outcome, job = run.execute("StopDuringTraining")

    assert ran(outcome, job) == (
        "SUCCEEDED",
        [*PLAN, "RunPrepare", "RecordPrepared", "RunTraining", "Cancel", "Cancelled"],
        [S.PENDING, S.PREPARING, S.DEPLOYING, S.TRAINING, S.EVALUATING, S.STOPPING, S.CANCELLED],
    )
    assert "Job" not in kube.kinds()


def test_given_a_stop_while_finalizing_then_the_wait_ends_and_the_job_is_cancelled(
    run: Run, kube: FakeKube
) -> None:
    push_image(TAG)
    prepares(run)
    trains(run, kube)
    run.once_started(TrainerStage.TRAIN, lambda: trainer_says(run.job_id, TrainerPhase.DONE))
    run.once_started(TrainerStage.FINALIZE, run.stop)

    outcome, job = run.execute("StopDuringFinalizing")

    assert outcome.status == "SUCCEEDED"
    assert outcome.path == [*PLAN, *STAGES[:-1], "Cancel", "Cancelled"]
    assert job.status is S.CANCELLED and "Job" not in kube.kinds()
