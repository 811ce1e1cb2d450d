"""The workflow state machine under moto, with its step handlers run in this process."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from support.aws_workflow import ACCOUNT, REGION, STATE_MACHINE_ARN, TAG, aws_workflow
from support.kube import FakeKube
from support.platform import use_ports
from support.sfn_mock import STATE_MACHINE_NAME, MockedStepFunctions

from functions import workflow as handlers
from whetstone.adapters.aws.sfn_orchestrator import StepFunctionsOrchestrator, render_definition
from whetstone.core.job import JobRecord
from whetstone.service.platform import Platform

# Each Lambda placeholder of the definition → the function name the tests give it (a Task
# state's name, or RunStage: the one Lambda of RunPrepare, RunTraining and RunFinalize) and
# its handler.
FUNCTIONS = {
    "BeginFunctionArn": ("Begin", handlers.begin),
    "WritePlanFunctionArn": ("WritePlan", handlers.write_plan),
    "ResolveImageFunctionArn": ("ResolveImage", handlers.resolve_image),
    "BuildStartedFunctionArn": ("BuildStarted", handlers.build_started),
    "BuildFinishedFunctionArn": ("BuildFinished", handlers.build_finished),
    "RunStageFunctionArn": ("RunStage", handlers.run_stage),
    "RecordPreparedFunctionArn": ("RecordPrepared", handlers.record_prepared),
    "CompleteFunctionArn": ("Complete", handlers.complete),
    "FailFunctionArn": ("RecordFailure", handlers.fail),
    "CancelFunctionArn": ("Cancel", handlers.cancel),
    "PauseFunctionArn": ("Pause", handlers.pause),
}


def substitutions() -> dict[str, str]:
    values = {
        placeholder: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{state}"
        for placeholder, (state, _) in FUNCTIONS.items()
    }
    return {**values, "BuildProjectName": "whetstone-trainer-image", "TrainerImageTag": TAG}


class CallbacksOnly(StepFunctionsOrchestrator):
    """The platform's orchestrator here: each test starts its execution under a test case
    itself, so creating a job starts none; stops and stage callbacks are the real ones."""

    def start(self, job: JobRecord) -> None:
        pass


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch, kube: FakeKube) -> Iterator[Platform]:
    with aws_workflow(monkeypatch, kube):
        yield use_ports(monkeypatch, orchestrator=CallbacksOnly(STATE_MACHINE_ARN))


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch, platform: Platform) -> MockedStepFunctions:
    helper = MockedStepFunctions({state: handler for state, handler in FUNCTIONS.values()})
    helper.install(monkeypatch)
    return helper


@pytest.fixture
def state_machine_arn(platform: Platform) -> str:
    created = boto3.client("stepfunctions").create_state_machine(
        name=STATE_MACHINE_NAME,
        definition=render_definition(substitutions()),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/whetstone-workflow",
    )
    return created["stateMachineArn"]
