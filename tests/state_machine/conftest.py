"""The workflow state machine under moto, with its step handlers run in this process."""

from __future__ import annotations

import boto3
import pytest
from support.aws_workflow import ACCOUNT, REGION, TAG
from support.sfn_mock import STATE_MACHINE_NAME, MockedStepFunctions

from functions import workflow as handlers
from whetstone.adapters.aws.sfn_orchestrator import render_definition
from whetstone.service.platform import Platform

# Each Lambda placeholder of the definition → the Task state that invokes it and its handler.
FUNCTIONS = {
    "BeginFunctionArn": ("Begin", handlers.begin),
    "PrepareFunctionArn": ("Prepare", handlers.prepare),
    "ResolveImageFunctionArn": ("ResolveImage", handlers.resolve_image),
    "BuildStartedFunctionArn": ("BuildStarted", handlers.build_started),
    "BuildFinishedFunctionArn": ("BuildFinished", handlers.build_finished),
    "LaunchFunctionArn": ("Launch", handlers.launch),
    "PollFunctionArn": ("Poll", handlers.poll),
    "FinalizeFunctionArn": ("Finalize", handlers.finalize),
    "FailFunctionArn": ("RecordFailure", handlers.fail),
    "CancelFunctionArn": ("Cancel", handlers.cancel),
}


def substitutions() -> dict[str, str]:
    values = {
        placeholder: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{state}"
        for placeholder, (state, _) in FUNCTIONS.items()
    }
    return {**values, "BuildProjectName": "whetstone-trainer-image", "TrainerImageTag": TAG}


@pytest.fixture
def platform(aws_platform: Platform) -> Platform:
    return aws_platform


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
