"""The Orchestrator of the aws runtime: one Step Functions execution per job.

The definition is state_machine/workflow.asl.json; its resources are `${Name}`
definition substitutions, listed in DEFINITION_PLACEHOLDERS (CDK fills them).

start: StartExecution named after the job, so a retried start is the same
execution (Step Functions answers an existing name with the same input with that
execution). The workflow waits for each trainer stage by a task token stored on the
job (`.waitForTaskToken`); this class is also the TaskCallbacks that end or keep alive
that wait. stop: the job's stop flag, already written by the stop service, is what
every step checks; a stage being waited for is ended at once with `JobStopped` (see
docs/workflow.md, "Stopping"). pause: the train stage's wait is ended with `JobPaused`
(before it, RunTraining sees the pausing status and raises it); the workflow's Pause step
releases the compute and the execution ends, so a paused job holds no execution and no
35-day execution timeout runs while it waits. resume: a new execution with `resume` in its
input, which writes the plan again, finds the image and goes straight to RunTraining.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from whetstone.core.events import TrainerStage
from whetstone.core.job import JobRecord
from whetstone.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

DEFINITION_PATH = Path(__file__).resolve().parents[3] / "state_machine" / "workflow.asl.json"
# Every ${Placeholder} of the definition: Lambda ARNs of the step handlers, the CodeBuild
# project and the trainer image tag (whetstone.service.images.trainer_image_tag).
DEFINITION_PLACEHOLDERS = (
    "BeginFunctionArn",
    "WritePlanFunctionArn",
    "ResolveImageFunctionArn",
    "BuildStartedFunctionArn",
    "BuildFinishedFunctionArn",
    "RunStageFunctionArn",
    "RecordPreparedFunctionArn",
    "CompleteFunctionArn",
    "FailFunctionArn",
    "CancelFunctionArn",
    "PauseFunctionArn",
    "BuildProjectName",
    "TrainerImageTag",
)
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")
# A restarted execution is named <job id>-r<suffix> (job ids have no "-r").
RESTART_MARK = "-r"
_RESTART_SUFFIX = re.compile(r"-r[0-9a-z]+$")


def definition_placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def render_definition(substitutions: Mapping[str, str], text: str | None = None) -> str:
    """The definition with every placeholder replaced (what CloudFormation does)."""
    source = DEFINITION_PATH.read_text() if text is None else text
    missing = definition_placeholders(source) - set(substitutions)
    if missing:
        raise KeyError(f"no substitution for {sorted(missing)}")
    return _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], source)


# The error a stop ends a stage's wait with: the Catch of every stage sends it to Cancel.
STOPPED_ERROR = "JobStopped"
# The error a pause ends the train stage's wait with: its Catch sends it to Pause.
PAUSED_ERROR = "JobPaused"


def execution_input(job_id: str, *, resume: bool = False) -> dict[str, object]:
    """The input of a job's execution; a resumed job's skips to the train stage."""
    return {"job_id": job_id, "resume": True} if resume else {"job_id": job_id}


def _restart_name(job_id: str) -> str:
    """A new execution name for the job every time: StartExecution answers a name already
    used with that old execution."""
    return f"{job_id}{RESTART_MARK}{uuid.uuid4().hex[:12]}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


class StepFunctionsOrchestrator:
    def __init__(self, state_machine_arn: str, *, client: SFNClient | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("stepfunctions")
        self._sfn = client
        self.state_machine_arn = state_machine_arn

    def start(self, job: JobRecord) -> None:
        self._start(job.job_id, job.job_id)

    def restart(self, job: JobRecord) -> None:
        """A new execution for a job whose execution was lost (reconciler), under a new name,
        so a job restarted twice starts again."""
        self._start(job.job_id, _restart_name(job.job_id))

    def resume(self, job: JobRecord) -> None:
        """A new execution for a paused job, which goes to the train stage (the paused one
        has ended)."""
        self._start(job.job_id, _restart_name(job.job_id), resume=True)

    def _start(self, job_id: str, name: str, *, resume: bool = False) -> None:
        started = self._sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=name,
            input=json.dumps(execution_input(job_id, resume=resume)),
        )
        logger.info("workflow started", job_id=job_id, execution=started["executionArn"])

    def stop(self, job: JobRecord) -> None:
        """End the wait for the stage running now, if any: the workflow cancels the job.
        Between stages the next step sees the stop flag."""
        if job.task_token is None:
            logger.info("stop flag set; the next step cancels the job", job_id=job.job_id)
            return
        self.fail_task(job.task_token, STOPPED_ERROR, "stop requested")

    def pause(self, job: JobRecord) -> None:
        """End the train stage's wait, if it runs: the workflow pauses the job. Before it,
        RunTraining sees the pausing status; after it, the job completes."""
        if job.task_token is None or job.task_stage is not TrainerStage.TRAIN:
            logger.info("pausing; the train stage's start pauses the job", job_id=job.job_id)
            return
        self.fail_task(job.task_token, PAUSED_ERROR, "pause requested")

    def complete_task(self, token: str, output: dict[str, object]) -> None:
        self._callback(
            "success",
            lambda: self._sfn.send_task_success(taskToken=token, output=json.dumps(output)),
        )

    def fail_task(self, token: str, error: str, cause: str) -> None:
        self._callback(
            "failure",
            lambda: self._sfn.send_task_failure(taskToken=token, error=error, cause=cause),
        )

    def heartbeat(self, token: str) -> None:
        self._callback("heartbeat", lambda: self._sfn.send_task_heartbeat(taskToken=token))

    def _callback(self, kind: str, send: Callable[[], object]) -> None:
        # A token already answered (a duplicate event, a stop racing the trainer's end) or
        # timed out has nothing left to wait for: the outcome stands, so this one is dropped.
        try:
            send()
        except (
            self._sfn.exceptions.TaskTimedOut,
            self._sfn.exceptions.TaskDoesNotExist,
            self._sfn.exceptions.InvalidToken,
        ) as error:
            logger.warning("task callback dropped", kind=kind, reason=type(error).__name__)

    def running(self) -> dict[str, str]:
        """job id → execution ARN of every running execution."""
        runs: dict[str, str] = {}
        paginator = self._sfn.get_paginator("list_executions")
        for page in paginator.paginate(
            stateMachineArn=self.state_machine_arn, statusFilter="RUNNING"
        ):
            for execution in page["executions"]:
                runs[_RESTART_SUFFIX.sub("", execution["name"])] = execution["executionArn"]
        return runs

    def abort(self, execution: str, reason: str) -> None:
        self._sfn.stop_execution(executionArn=execution, error="Reconciled", cause=reason)
