"""Reading a job's metric series: a bounded page of steps, downsampled."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from whetstone.core.deferred import DeferredModel
from whetstone.core.errors import InvalidInputError
from whetstone.core.job import Caller, MetricPoint
from whetstone.core.metric_series import downsample
from whetstone.service.jobs import get_job
from whetstone.service.metric_names import require_known_metrics
from whetstone.service.platform import Platform

# What one metrics request reads at most: series, and points of each before downsampling
# (a page; `next_step` continues). A process's memory and a Lambda's time stay bounded.
MAX_SERIES = 64
MAX_POINTS_READ = 10_000


class MetricPage(DeferredModel):
    """A page of a job's metric series: every series over the same range of steps."""

    series: dict[str, list[MetricPoint]]
    next_step: Annotated[
        int | None,
        Field(description="Where the next page starts (its min_step); None on the last page."),
    ] = None


def job_metrics(
    platform: Platform,
    caller: Caller,
    job_id: str,
    *,
    names: list[str] | None,
    min_step: int | None,
    max_step: int | None,
    max_points: int,
) -> MetricPage:
    """The series from `min_step`, each read up to MAX_POINTS_READ points before it is
    downsampled to `max_points`. When a series has more, every series stops at the same
    step and `next_step` says where the next page starts; at most MAX_SERIES series
    (422 `too_many_series` beyond)."""
    get_job(platform, caller, job_id)
    require_known_metrics(names or ())
    chosen = (
        list(dict.fromkeys(names))
        if names
        else platform.jobs.metric_names(job_id, limit=MAX_SERIES + 1)
    )
    if len(chosen) > MAX_SERIES:
        raise InvalidInputError(
            f"a request reads at most {MAX_SERIES} series"
            + ("" if names else " and this job has more")
            + "; name fewer with `names`",
            code="too_many_series",
            details={"max_series": MAX_SERIES},
        )
    series: dict[str, list[MetricPoint]] = {}
    for point in platform.jobs.query_metrics(
        job_id, names=chosen, min_step=min_step, max_step=max_step, limit=MAX_POINTS_READ
    ):
        series.setdefault(point.name, []).append(point)
    cut = [points[-1].step for points in series.values() if len(points) == MAX_POINTS_READ]
    next_step = min(cut) + 1 if cut else None
    if next_step is not None:
        series = {
            name: [point for point in points if point.step < next_step]
            for name, points in series.items()
        }
    return MetricPage(
        series={name: downsample(points, max_points) for name, points in series.items() if points},
        next_step=next_step,
    )
