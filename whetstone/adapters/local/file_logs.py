"""LogStore on JSON-lines files: one file per job and source, for the local runtime."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import islice
from pathlib import Path

from whetstone.adapters.local.cursors import decode_cursor, encode_cursor
from whetstone.core.job import LogEntry, LogSource, level_at_least
from whetstone.core.logs import LogQuery

SOURCES: tuple[LogSource, ...] = ("build", "deployment", "training")


def _offsets(value: dict[str, int]) -> dict[str, int]:
    return {str(k): int(v) for k, v in value.items()}


# The lines of each source file one query reads at most.
READ_BUDGET = 10_000


def _admits(query: LogQuery, entry: LogEntry) -> bool:
    return (
        (query.start is None or entry.time >= query.start)
        and (query.end is None or entry.time < query.end)
        and level_at_least(entry.level, query.min_level)
    )


class FileLogStore:
    """`<root>/<job_id>/<source>.jsonl`; a cursor holds a line offset per source file."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()

    def _file(self, job_id: str, source: LogSource) -> Path:
        return self._root / job_id / f"{source}.jsonl"

    def append(self, job_id: str, entries: Sequence[LogEntry]) -> None:
        by_source: dict[LogSource, list[str]] = {}
        for entry in entries:
            by_source.setdefault(entry.source, []).append(entry.model_dump_json() + "\n")
        with self._lock:
            for source, lines in by_source.items():
                path = self._file(job_id, source)
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as handle:
                    handle.writelines(lines)

    def _read(self, job_id: str, source: LogSource, skip: int) -> Iterator[tuple[int, LogEntry]]:
        path = self._file(job_id, source)
        if not path.exists():
            return
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle):
                if number >= skip and line.endswith("\n"):
                    yield number, LogEntry.model_validate_json(line)

    def query(self, job_id: str, query: LogQuery) -> tuple[list[LogEntry], str | None]:
        """At most READ_BUDGET lines of each source are read a call. A source with more
        unread sets a horizon, its last line read: later lines of the other sources wait for
        the next page, so the merge by time stays right and a filter that matches little
        returns a short page and a cursor rather than reading every file to its end."""
        offsets = decode_cursor(query.cursor, _offsets) if query.cursor else {}
        sources = (query.source,) if query.source else SOURCES
        candidates: list[tuple[datetime, LogSource, int, LogEntry]] = []
        horizon: datetime | None = None
        for name in sources:
            lines = list(islice(self._read(job_id, name, offsets.get(name, 0)), READ_BUDGET))
            if len(lines) == READ_BUDGET:
                last = lines[-1][1].time
                horizon = last if horizon is None else min(horizon, last)
            candidates.extend((entry.time, name, number, entry) for number, entry in lines)
        candidates.sort(key=lambda item: (item[0], item[1], item[2]))
        page: list[LogEntry] = []
        for moment, name, number, entry in candidates:
            if len(page) == query.limit or (horizon is not None and moment > horizon):
                return page, encode_cursor(offsets)
            offsets[name] = number + 1
            if _admits(query, entry):
                page.append(entry)
        return page, None if horizon is None else encode_cursor(offsets)

    def delete(self, job_id: str) -> None:
        with self._lock:
            shutil.rmtree(self._root / job_id, ignore_errors=True)
