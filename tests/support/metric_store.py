"""The bounded metric reads every JobStore shares, asserted once for both stores."""

from __future__ import annotations

from datetime import UTC, datetime

from whetstone.core.job import MetricPoint
from whetstone.ports import JobStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def assert_series_names_and_capped_reads(store: JobStore) -> None:
    """Given three series, when names are listed and series read with a limit, then the
    names come sorted up to their limit and each series stops at its lowest steps."""
    store.put_metrics(
        "job-1",
        [
            MetricPoint(name=name, step=step, value=float(step), time=T0)
            for name in ("loss", "epoch", "gpu0_util_pct")
            for step in range(1, 31)
        ],
    )

    assert store.metric_names("job-1", limit=10) == ["epoch", "gpu0_util_pct", "loss"]
    assert store.metric_names("job-1", limit=2) == ["epoch", "gpu0_util_pct"]
    assert store.metric_names("job-2", limit=10) == []
    capped = store.query_metrics(
        "job-1", names=["loss", "epoch"], min_step=5, max_step=None, limit=4
    )
    every = store.query_metrics("job-1", names=None, min_step=None, max_step=None, limit=2)
    assert [(p.name, p.step) for p in capped] == [
        *[("epoch", step) for step in range(5, 9)],
        *[("loss", step) for step in range(5, 9)],
    ]
    assert [(p.name, p.step) for p in every] == [
        ("epoch", 1),
        ("epoch", 2),
        ("gpu0_util_pct", 1),
        ("gpu0_util_pct", 2),
        ("loss", 1),
        ("loss", 2),
    ]
