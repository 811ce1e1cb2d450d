"""A job's evaluation report, as the trainer stored it beside the model (core.evaluation)."""

from __future__ import annotations

from whetstone.core.errors import NotFoundError
from whetstone.core.evaluation import EvaluationReport
from whetstone.core.job import Caller
from whetstone.core.layout import JobLayout
from whetstone.core.lifecycle import is_terminal
from whetstone.service.jobs import get_job
from whetstone.service.platform import Platform


def job_evaluation(platform: Platform, caller: Caller, job_id: str) -> EvaluationReport:
    """The report the job's evaluation step wrote; NotFoundError before it exists."""
    job = get_job(platform, caller, job_id)
    key = JobLayout.of(job).evaluation
    if not platform.blobs.exists(key):
        when = (
            "it ended without one"
            if is_terminal(job.status)
            else f"it is {job.status}; the report is written after training"
        )
        raise NotFoundError(
            f"job {job_id} has no evaluation report: {when}", code="evaluation_not_found"
        )
    with platform.blobs.open(key) as stream:
        return EvaluationReport.model_validate_json(stream.read())
