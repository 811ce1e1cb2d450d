"""A metrics request reads a bounded amount: a capped number of series, and a page of steps
of each (`next_step` continues), in the API, the SDK and both stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support.apigw import call_api
from support.jobs import make_job

from whetstone.cli.tokens import DEFAULT_CALLER
from whetstone.client import WhetstoneClient
from whetstone.core.job import MetricPoint
from whetstone.runtime import get_platform
from whetstone.service import metric_pages

API = "/api/v1/fine-tuning"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stored_job(steps: dict[str, range]) -> str:
    """A job of the local caller's organization with the given steps of each series."""
    job = make_job(org_id=DEFAULT_CALLER.org_id)
    jobs = get_platform().jobs
    jobs.create(job)
    jobs.put_metrics(
        job.job_id,
        [
            MetricPoint(name=name, step=step, value=float(step), time=T0)
            for name, range_ in steps.items()
            for step in range_
        ],
    )
    return job.job_id


def metrics(job_id: str, query: str = "") -> dict[str, object]:
    response = call_api("GET", f"{API}/jobs/{job_id}/metrics?max_points=1000{query}")
    assert response.status == 200, response.body
    body: dict[str, object] = response.body
    return body


def test_more_series_than_the_cap_is_refused_naming_the_cap() -> None:
    job_id = stored_job({"loss": range(1, 3)})
    names = ",".join(f"gpu{i}_util_pct" for i in range(metric_pages.MAX_SERIES + 1))

    response = call_api("GET", f"{API}/jobs/{job_id}/metrics?names={names}")

    assert (response.status, response.body["code"]) == (422, "too_many_series")
    assert str(metric_pages.MAX_SERIES) in response.body["message"]
    assert response.body["details"] == {"max_series": metric_pages.MAX_SERIES}


def test_a_job_with_more_series_than_the_cap_asks_for_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metric_pages, "MAX_SERIES", 2)
    job_id = stored_job({name: range(1, 3) for name in ("loss", "epoch", "grad_norm")})

    response = call_api("GET", f"{API}/jobs/{job_id}/metrics")

    assert (response.status, response.body["code"]) == (422, "too_many_series")


def test_a_long_series_comes_in_pages_of_steps_that_cover_every_point_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a series longer than one request reads, and a short one beside it
    monkeypatch.setattr(metric_pages, "MAX_POINTS_READ", 10)
    job_id = stored_job({"loss": range(1, 26), "eval_loss": range(5, 26, 5)})

    # When the pages are read from each one's next_step
    pages = [metrics(job_id)]
    while pages[-1]["next_step"] is not None:
        pages.append(metrics(job_id, f"&min_step={pages[-1]['next_step']}"))

    # Then each page covers the steps before its next_step, and together every point once
    assert [page["next_step"] for page in pages] == [11, 21, None]
    steps: dict[str, list[int]] = {}
    for page in pages:
        for name, points in page["series"].items():  # type: ignore[attr-defined]
            steps.setdefault(name, []).extend(point["step"] for point in points)
    assert steps == {"loss": list(range(1, 26)), "eval_loss": [5, 10, 15, 20, 25]}


def test_the_sdk_follows_the_pages(
    client: WhetstoneClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metric_pages, "MAX_POINTS_READ", 10)
    job_id = stored_job({"loss": range(1, 26)})

    series = client.metrics(job_id, names=["loss"], max_points=1000)

    assert [point.step for point in series["loss"]] == list(range(1, 26))
