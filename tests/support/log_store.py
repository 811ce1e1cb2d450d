"""The bounded log reads every LogStore shares, asserted once for both stores."""

from __future__ import annotations

from datetime import datetime, timedelta

from whetstone.core.job import LogEntry
from whetstone.core.logs import LogQuery
from whetstone.ports import LogStore


def assert_a_sparse_level_filter_reads_a_budget_per_page(logs: LogStore, t0: datetime) -> None:
    """Given many debug lines of two sources and one error after them (more lines than one
    query reads), when errors are asked for, then the first page is empty with a cursor,
    and following the cursors finds the error once."""
    lines = [
        LogEntry(
            time=t0 + timedelta(seconds=i),
            source=("build", "training")[i % 2],
            level="debug",
            message=f"debug {i}",
        )
        for i in range(40)
    ]
    error = LogEntry(time=t0 + timedelta(seconds=50), source="training", level="error", message="x")
    logs.append("job-1", [*lines, error])

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page, cursor = logs.query("job-1", LogQuery(min_level="error", limit=5, cursor=cursor))
        pages.append([entry.message for entry in page])
        if cursor is None:
            break

    assert pages[0] == [] and len(pages) > 2
    assert [message for page in pages for message in page] == ["x"]
