"""An organization's quota of jobs that have not ended and the GPUs they hold: the limits a
job store checks in the same atomic step that stores a new job."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, PositiveInt

from whetstone.core.deferred import DeferredModel
from whetstone.core.errors import QuotaExceededError


class ActiveLimits(DeferredModel):
    """What an organization's jobs that have not ended may hold at once."""

    model_config = ConfigDict(frozen=True)

    max_jobs: Annotated[PositiveInt, Field(description="Jobs not ended at once.")]
    max_gpus: Annotated[PositiveInt, Field(description="GPUs those jobs may hold together.")]


class ActiveUsage(DeferredModel):
    """What an organization's jobs that have not ended hold now."""

    model_config = ConfigDict(frozen=True)

    jobs: Annotated[int, Field(ge=0, description="Jobs not ended.")] = 0
    gpus: Annotated[int, Field(ge=0, description="GPUs their specs ask for, together.")] = 0


def quota_refusal(usage: ActiveUsage, gpus: int, limits: ActiveLimits) -> QuotaExceededError | None:
    """Why one more job asking for `gpus` would pass the limits; None when it fits."""
    if usage.jobs >= limits.max_jobs:
        return QuotaExceededError(
            f"your organization has {usage.jobs} jobs running, its limit; wait for one to end "
            "or stop one",
            code="quota_jobs",
        )
    if usage.gpus + gpus > limits.max_gpus:
        return QuotaExceededError(
            f"this job's {gpus} GPUs would bring your organization to {usage.gpus + gpus}, "
            f"above its limit of {limits.max_gpus}",
            code="quota_gpus",
        )
    return None
