"""The step handlers of the job workflow state machine (state_machine/workflow.asl.json).

One handler per Task state: parse the state's payload, call one step, return a small
JSON dict. Step errors escape as their own class, whose name the state machine's
Retry and Catch match.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field

from whetstone import runtime
from whetstone.core.events import TrainerStage
from whetstone.core.plan import EventSinkSettings
from whetstone.observability import STEP_FUNCTIONS, lambda_entry, log_job, logger
from whetstone.service import pausing, stage_tasks, workflow
from whetstone.service import state_machine_steps as steps


class StepInput(BaseModel):
    job_id: Annotated[str, Field(min_length=1)]


class ImageInput(StepInput):
    tag: Annotated[str, Field(min_length=1)]


class BuildInput(ImageInput):
    build: steps.BuildRun


class StageInput(StepInput):
    stage: TrainerStage
    plan_uri: Annotated[str, Field(min_length=1)]
    image: Annotated[str, Field(min_length=1)]
    task_token: Annotated[str, Field(min_length=1)]


class Caught(BaseModel):
    Error: str
    Cause: str | None = None


class FailInput(StepInput):
    # One entry: the step whose Catch fired → what it caught (see the ASL's ResultPaths).
    failure: Annotated[dict[str, Caught], Field(min_length=1, max_length=1)]


Input = TypeVar("Input", bound=StepInput)
step_handler = lambda_entry(STEP_FUNCTIONS)


def _read(model: type[Input], event: dict[str, Any]) -> Input:
    step = model.model_validate(event)
    log_job(step.job_id)
    logger.info("workflow step")  # which one: the function_name key
    return step


@step_handler
def begin(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    step = _read(StepInput, event)
    steps.begin(runtime.get_platform(), step.job_id)
    return {}


@step_handler
def write_plan(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    step = _read(StepInput, event)
    platform = runtime.get_platform()
    settings = platform.settings
    events = EventSinkSettings(
        kind="eventbridge", bus_name=settings.event_bus_name, region=settings.aws_region
    )
    return workflow.write_plan(platform, step.job_id, events).model_dump()


@step_handler
def resolve_image(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    step = _read(ImageInput, event)
    images = runtime.get_aws_workflow_ports().images
    return steps.resolve_image(runtime.get_platform(), step.job_id, images, step.tag).model_dump()


@step_handler
def build_started(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    step = _read(ImageInput, event)
    steps.build_started(runtime.get_platform(), step.job_id, step.tag)
    return {}


@step_handler
def build_finished(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    step = _read(BuildInput, event)
    ports = runtime.get_aws_workflow_ports()
    image = steps.build_finished(
        runtime.get_platform(), step.job_id, ports.images, ports.build_logs, step.tag, step.build
    )
    return {"tag": step.tag, "image": image}


@step_handler
def run_stage(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """Store the task token and start the stage's Kubernetes Job; the workflow then waits
    for the stage's end event (ingest answers the token)."""
    step = _read(StageInput, event)
    compute = runtime.get_aws_workflow_ports().compute
    stage_tasks.run_stage(
        runtime.get_platform(),
        step.job_id,
        compute,
        step.stage,
        step.task_token,
        step.plan_uri,
        step.image,
    )
    return {}


@step_handler
def record_prepared(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    step = _read(StepInput, event)
    job = workflow.record_prepared(runtime.get_platform(), step.job_id)
    return {"estimated_hours": job.estimate.estimated_hours if job.estimate else None}


@step_handler
def complete(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    step = _read(StepInput, event)
    job = workflow.complete(runtime.get_platform(), step.job_id)
    return {"status": job.status.value}


@step_handler
def fail(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    step = _read(FailInput, event)
    (where, caught), *_ = step.failure.items()
    ports = runtime.get_aws_workflow_ports()
    error = steps.record_failure(
        runtime.get_platform(),
        step.job_id,
        ports.compute,
        ports.build_logs,
        where,
        caught.Error,
        caught.Cause,
    )
    return error.model_dump()


@step_handler
def cancel(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    step = _read(StepInput, event)
    workflow.cancel(runtime.get_platform(), step.job_id, runtime.get_aws_workflow_ports().compute)
    return {}


@step_handler
def pause(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """Delete the train stage's Kubernetes Job (the trainer checkpoints on SIGTERM) and
    record the job paused; the execution then ends."""
    step = _read(StepInput, event)
    compute = runtime.get_aws_workflow_ports().compute
    job = pausing.pause(runtime.get_platform(), step.job_id, compute)
    return {"status": job.status.value}
