"""The Lambda functions of the workflow state machine as the tests deploy it: each ARN
placeholder of state_machine/workflow.asl.json → a function name and its handler in
functions/workflow.py, and the definition's substitutions."""

from __future__ import annotations

from functions import workflow as handlers
from support.aws_workflow import ACCOUNT, REGION, TAG
from support.sfn_mock import Handler

# Each Lambda placeholder of the definition → the function name the tests give it (a Task
# state's name, or RunStage: the one Lambda of RunPrepare, RunTraining and RunFinalize) and
# its handler.
FUNCTIONS: dict[str, tuple[str, Handler]] = {
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


def handlers_by_name() -> dict[str, Handler]:
    """Each function name → its handler, as MockedStepFunctions invokes them."""
    return dict(FUNCTIONS.values())


def substitutions() -> dict[str, str]:
    """The values of the definition's placeholders."""
    values = {
        placeholder: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{state}"
        for placeholder, (state, _) in FUNCTIONS.items()
    }
    return {**values, "BuildProjectName": "whetstone-trainer-image", "TrainerImageTag": TAG}
