"""Budgets: an organization's monthly budget checked at create and at resume, a job's cost
cap while it runs.

The month's spend is that of the jobs created this calendar month (UTC), each up to now: a job
created in an earlier month counts in that month's spend, including what it spends now.

A job at its `hardware.max_cost_usd` is paused (its checkpoint kept), not failed: resuming it
takes a higher cap.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from whetstone.core.deferred import DeferredModel
from whetstone.core.errors import BudgetExceededError
from whetstone.core.job import JobRecord


class BudgetFigures(DeferredModel):
    """What a refusal for the organization's monthly budget says, in USD."""

    budget_usd: Annotated[float, Field(description="The organization's monthly budget.")]
    spent_usd: Annotated[
        float, Field(description="Spend so far of the jobs created this month (UTC).")
    ]
    estimate_usd: Annotated[
        float,
        Field(description="The refused job's estimated cost (of a resume: what is left of it)."),
    ]
    remaining_usd: Annotated[float, Field(description="Budget left before this job.")]


def month_start(now: datetime) -> datetime:
    """The first instant of `now`'s calendar month (UTC)."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def check_monthly_budget(
    budget_usd: float | None,
    month_jobs: list[JobRecord],
    estimate_usd: float,
    *,
    allow_over_budget: bool,
    resuming: bool = False,
) -> None:
    """BudgetExceededError (with the figures) when the month's jobs' spend plus this job's
    estimate (`resuming`: its estimated cost still to come) passes the budget, unless the
    request allows going over it."""
    if budget_usd is None or allow_over_budget:
        return
    spent = sum(job.cost.current_usd for job in month_jobs)
    if spent + estimate_usd <= budget_usd:
        return
    figures = BudgetFigures(
        budget_usd=budget_usd,
        spent_usd=round(spent, 2),
        estimate_usd=round(estimate_usd, 2),
        remaining_usd=round(max(0.0, budget_usd - spent), 2),
    )
    raise BudgetExceededError(
        f"this job's {'remaining ' if resuming else ''}estimated ${figures.estimate_usd:.2f} "
        f"would bring your organization's spend this month to ${spent + estimate_usd:.2f}, "
        f"past its monthly budget of ${budget_usd:.2f} (${figures.remaining_usd:.2f} left); "
        f"set allow_over_budget to {'resume' if resuming else 'create'} it anyway",
        details=figures,
    )


def remaining_estimate(job: JobRecord) -> float:
    """What the job is projected to spend from now on (its cost brought up to date)."""
    return max(0.0, job.cost.estimated_total_usd - job.cost.current_usd)


def cap_reached(job: JobRecord) -> bool:
    """The job has spent its `hardware.max_cost_usd` (a job without a cap never has)."""
    cap = job.spec.hardware.max_cost_usd
    return cap is not None and job.cost.current_usd >= cap


def cap_message(job: JobRecord) -> str:
    return (
        f"cost cap reached: ${job.cost.current_usd:.2f} spent of the job's max_cost_usd "
        f"${job.spec.hardware.max_cost_usd or 0:.2f}; paused with its checkpoint"
    )
