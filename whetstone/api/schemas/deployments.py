"""The deployment of a job's model as the API shows it."""

from __future__ import annotations

from datetime import datetime

from whetstone.api.schemas.fields import field_of
from whetstone.core.deferred import DeferredModel
from whetstone.core.job import Deployment, DeploymentStatus
from whetstone.core.serving import ServingProblem


class DeploymentResponse(DeferredModel):
    """A job's model served as an OpenAI-compatible endpoint (no server process id)."""

    status: DeploymentStatus = field_of(Deployment, "status")
    model: str = field_of(Deployment, "model")
    endpoint: str | None = field_of(Deployment, "endpoint")
    max_lora_rank: int = field_of(Deployment, "max_lora_rank")
    created_at: datetime = field_of(Deployment, "created_at")
    updated_at: datetime = field_of(Deployment, "updated_at")
    message: str | None = field_of(Deployment, "message")
    problems: list[ServingProblem] = field_of(Deployment, "problems")

    @classmethod
    def from_record(cls, deployment: Deployment) -> DeploymentResponse:
        return cls(
            status=deployment.status,
            model=deployment.model,
            endpoint=deployment.endpoint,
            max_lora_rank=deployment.max_lora_rank,
            created_at=deployment.created_at,
            updated_at=deployment.updated_at,
            message=deployment.message,
            problems=deployment.problems,
        )
