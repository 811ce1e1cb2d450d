"""Build logs: the lines a CodeBuild run wrote to its CloudWatch log stream."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from whetstone.core.job import LogEntry

if TYPE_CHECKING:
    from mypy_boto3_logs.client import CloudWatchLogsClient

MAX_LINES = 5000


class CodeBuildLogs:
    def __init__(self, client: CloudWatchLogsClient | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("logs")
        self._logs = client

    def read(self, group: str, stream: str, *, max_lines: int = MAX_LINES) -> list[LogEntry]:
        """The stream's lines, oldest first, as build log entries (the last `max_lines`);
        none when the stream does not exist."""
        entries: list[LogEntry] = []
        token: str | None = None
        while True:
            try:
                page = (
                    self._logs.get_log_events(
                        logGroupName=group,
                        logStreamName=stream,
                        startFromHead=True,
                        nextToken=token,
                    )
                    if token
                    else self._logs.get_log_events(
                        logGroupName=group, logStreamName=stream, startFromHead=True
                    )
                )
            except self._logs.exceptions.ResourceNotFoundException:
                return entries  # the build never started its log (or it expired)
            for event in page.get("events", []):
                message = event.get("message", "").rstrip()
                if message:
                    entries.append(
                        LogEntry(
                            time=datetime.fromtimestamp(event.get("timestamp", 0) / 1000, UTC),
                            source="build",
                            level="info",
                            message=message,
                        )
                    )
            next_token = page.get("nextForwardToken")
            if not page.get("events") or next_token == token:
                return entries[-max_lines:]
            token = next_token
