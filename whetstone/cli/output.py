"""What the CLI prints: aligned tables, JSON for scripts, the live progress line."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO

from pydantic_core import to_jsonable_python

from whetstone.api.schemas.jobs import JobResponse
from whetstone.core.lifecycle import status_label


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Plain-text columns, left-aligned, two spaces apart; '-' for a missing value."""
    cells = [[cell(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], len(value))
    lines = [
        "  ".join(value.ljust(widths[i]) for i, value in enumerate(line)).rstrip()
        for line in [list(headers), *cells]
    ]
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, object]]) -> str:
    """`name: value` lines with the values aligned."""
    width = max((len(name) for name, _ in pairs), default=0)
    return "\n".join(f"{(name + ':').ljust(width + 1)}  {cell(value)}" for name, value in pairs)


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


MAX_INLINE_VALUE = 80


def inline(values: Mapping[str, object]) -> str:
    """Structured fields on one line, `name=value`: lists and mappings as compact JSON, a
    value longer than MAX_INLINE_VALUE cut with '…' (`--json` has them whole)."""
    parts = []
    for name, value in values.items():
        if isinstance(value, Mapping | list | tuple):
            text = json.dumps(to_jsonable_python(value), separators=(",", ":"))
        else:
            text = cell(value)
        if len(text) > MAX_INLINE_VALUE:
            text = text[: MAX_INLINE_VALUE - 1] + "…"
        parts.append(f"{name}={text}")
    return " ".join(parts)


def to_json(value: Any) -> str:
    """Models, and lists and dicts of them, as the API sends them."""
    return json.dumps(to_jsonable_python(value), indent=2)


def usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(job: JobResponse) -> str:
    """status, step/max_steps, loss, ETA and cost of a job in one line."""
    progress = job.progress
    parts = [job.job_id, status_label(job.status).ljust(10)]
    if progress.max_steps:
        width = 20
        filled = round(width * progress.fraction)
        parts.append(f"[{'#' * filled}{'.' * (width - filled)}]")
        parts.append(f"step {progress.step}/{progress.max_steps}")
    loss = job.latest_metrics.get("loss")
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    if progress.eta_seconds is not None and not job.is_terminal:
        parts.append(f"ETA {duration(progress.eta_seconds)}")
    parts.append(f"cost {usd(job.cost.current_usd)} of ~{usd(job.cost.estimated_total_usd)}")
    return "  ".join(parts)


class ProgressBar:
    """One line redrawn in place on a terminal; a line per change otherwise (logs, CI)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._last = ""

    def update(self, job: JobResponse) -> None:
        line = progress_line(job)
        if line == self._last:
            return
        if self.live:
            self.stream.write("\r" + line.ljust(len(self._last)))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._last = line

    def close(self) -> None:
        if self.live and self._last:
            self.stream.write("\n")
            self.stream.flush()


def api_error_text(message: str, code: str, details: Any) -> str:
    """The server's message and code, with the field errors it lists, one per line."""
    lines = [f"{message} ({code})"]
    if isinstance(details, list):
        lines += [
            f"  {item['loc'] or 'body'}: {item['message']}"
            for item in details
            if isinstance(item, dict) and "loc" in item and "message" in item
        ]
    return "\n".join(lines)
