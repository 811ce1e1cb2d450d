"""The evaluation route: a job's evaluation report, once the trainer wrote it."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from whetstone.api.identity import current_caller
from whetstone.api.routes.jobs import JobId
from whetstone.api.schemas.evaluation import EvaluationResponse
from whetstone.runtime import get_platform
from whetstone.service.evaluation import job_evaluation

router = Router()


@router.get("/jobs/<job_id>/evaluation", summary="Get a job's evaluation report")
def evaluation(job_id: JobId) -> EvaluationResponse:
    report = job_evaluation(get_platform(), current_caller(router), job_id)
    return EvaluationResponse.of(job_id, report)
