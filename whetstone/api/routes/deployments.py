"""Deployment routes: serve a completed job's model, see its readiness, stop it."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from whetstone.api.identity import current_caller
from whetstone.api.schemas.deployments import DeploymentResponse
from whetstone.core.serving import MAX_LORA_RANK_LIMIT
from whetstone.runtime import get_platform
from whetstone.service import deployments

router = Router()

JobId = Annotated[str, Path(description="Job id.", max_length=64)]


@router.post(
    "/jobs/<job_id>/deploy",
    summary="Serve a completed job's model (OpenAI API)",
    status_code=HTTPStatus.ACCEPTED,
)
def deploy(
    job_id: JobId,
    max_lora_rank: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_LORA_RANK_LIMIT,
            description="The server's max LoRA rank; the platform's setting if unset.",
        ),
    ] = None,
) -> Response[DeploymentResponse]:
    started = deployments.deploy(
        get_platform(), current_caller(router), job_id, max_lora_rank=max_lora_rank
    )
    return Response(
        status_code=HTTPStatus.ACCEPTED,
        content_type=content_types.APPLICATION_JSON,
        body=DeploymentResponse.from_record(started),
    )


@router.get("/jobs/<job_id>/deployment", summary="Get a job's deployment and its readiness")
def get_deployment(job_id: JobId) -> DeploymentResponse:
    deployment = deployments.get_deployment(get_platform(), current_caller(router), job_id)
    return DeploymentResponse.from_record(deployment)


@router.delete(
    "/jobs/<job_id>/deployment",
    summary="Stop serving a job's model",
    status_code=HTTPStatus.NO_CONTENT,
)
def delete_deployment(job_id: JobId) -> Response[str]:
    deployments.delete_deployment(get_platform(), current_caller(router), job_id)
    return Response(status_code=HTTPStatus.NO_CONTENT, body="")
