"""The deployment of a job's model as the API shows it."""

from __future__ import annotations

from datetime import datetime

from whetstone.api.schemas.base import WireModel, field_of
from whetstone.core.job import Deployment, DeploymentStatus
from whetstone.core.serving import ServingProblem


class DeploymentResponse(WireModel):
    """A job's model served as an OpenAI-compatible endpoint (no server process id)."""

    status: DeploymentStatus = field_of(Deployment, "status")
    model: str = field_of(Deployment, "model")
    base_model: str | None = field_of(Deployment, "base_model")
    endpoint: str | None = field_of(Deployment, "endpoint")
    max_lora_rank: int = field_of(Deployment, "max_lora_rank")
    created_at: datetime = field_of(Deployment, "created_at")
    updated_at: datetime = field_of(Deployment, "updated_at")
    message: str | None = field_of(Deployment, "message")
    problems: list[ServingProblem] = field_of(Deployment, "problems")
