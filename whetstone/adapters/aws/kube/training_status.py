"""Where a trainer is, from its Job and pods, and its Kubernetes events as deployment log
lines. Pure functions over the objects the API returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from whetstone.adapters.aws.kube.object_status import condition, parse_timestamp
from whetstone.core.job import LogEntry, LogLevelName
from whetstone.ports import ComputeState, ComputeStatus

# The time of the newest Kubernetes event already copied into the deployment log.
EVENTS_SEEN_ANNOTATION = "whetstone.dev/events-copied-until"


def job_state(job: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]]) -> ComputeStatus:
    """Where a trainer is, from its Job object and its pods (pure)."""
    if job is None:
        return ComputeStatus(state=ComputeState.MISSING, message="no Kubernetes Job")
    if condition(job, "Complete") is not None:
        return ComputeStatus(state=ComputeState.SUCCEEDED)
    failed = condition(job, "Failed")
    if failed is not None:
        reason = failed.get("reason") or "Failed"
        detail = failed.get("message") or ""
        if reason == "DeadlineExceeded":
            detail = "the trainer ran past its deadline (the estimate with a margin)"
        return ComputeStatus(state=ComputeState.FAILED, message=f"{reason}: {detail}".strip(": "))
    running = any((pod.get("status") or {}).get("phase") == "Running" for pod in pods)
    return ComputeStatus(state=ComputeState.RUNNING if running else ComputeState.PENDING)


def _event_time(event: Mapping[str, Any]) -> str:
    value = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
    return str(value or "")


def new_event_entries(
    events: Sequence[Mapping[str, Any]], seen_until: str | None
) -> tuple[list[LogEntry], str | None]:
    """Kubernetes events newer than `seen_until` as deployment log lines, and the new mark."""
    fresh = sorted(
        (
            e
            for e in events
            if _event_time(e) and (seen_until is None or _event_time(e) > seen_until)
        ),
        key=_event_time,
    )
    entries = []
    for event in fresh:
        level: LogLevelName = "warning" if event.get("type") == "Warning" else "info"
        involved = event.get("involvedObject") or {}
        entries.append(
            LogEntry(
                time=parse_timestamp(_event_time(event)) or datetime.now(UTC),
                source="deployment",
                level=level,
                message=str(event.get("message") or event.get("reason") or "event"),
                fields={
                    "reason": event.get("reason"),
                    "object": f"{involved.get('kind', '')}/{involved.get('name', '')}",
                    "count": event.get("count"),
                },
            )
        )
    return entries, (_event_time(fresh[-1]) if fresh else seen_until)
