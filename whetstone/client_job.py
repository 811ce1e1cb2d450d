"""A handle on one job of the SDK, and the one polling loop its waits share."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from whetstone.api.schemas.deployments import DeploymentResponse
from whetstone.api.schemas.jobs import JobResponse
from whetstone.api.schemas.transfers import ArtifactName
from whetstone.client_errors import WhetstoneTimeoutError
from whetstone.core.job import LogEntry, LogLevelName, LogSource, MetricPoint
from whetstone.core.lifecycle import TERMINAL_STATUSES, JobStatus

if TYPE_CHECKING:
    from whetstone.client import WhetstoneClient

T = TypeVar("T")


OnJob = Callable[[JobResponse], None]
OnDeployment = Callable[[DeploymentResponse], None]


def _has_ended(record: JobResponse) -> bool:
    return record.status in TERMINAL_STATUSES


def _has_settled(record: JobResponse) -> bool:
    """Ended, or paused: either way nothing more happens until someone acts."""
    return _has_ended(record) or record.status is JobStatus.PAUSED


def _has_started(deployment: DeploymentResponse) -> bool:
    return deployment.status != "starting"


class Job:
    """A handle on one job: refresh it, wait for it, follow its logs, stop, download or
    deploy it."""

    def __init__(self, client: WhetstoneClient, record: JobResponse | None, *, job_id: str = ""):
        self.client = client
        self._record = record
        self.job_id = record.job_id if record is not None else job_id

    def __repr__(self) -> str:
        status = self._record.status if self._record is not None else "unknown"
        return f"Job({self.job_id!r}, status={status!s})"

    @property
    def record(self) -> JobResponse:
        """The job as last fetched (fetched now if it never was)."""
        if self._record is None:
            return self.refresh()
        return self._record

    @property
    def status(self) -> str:
        return str(self.record.status)

    def refresh(self) -> JobResponse:
        self._record = self.client.get_job_record(self.job_id)
        return self._record

    def wait_between_polls(self, seconds: float) -> None:
        time.sleep(seconds)

    def _poll(
        self,
        fetch: Callable[[], T],
        done: Callable[[T], bool],
        waiting: Callable[[T], str],
        timeout: float | None,
        poll_s: float,
        on_update: Callable[[T], None] | None,
    ) -> T:
        """Fetch until `done`; the last value, every one passed to `on_update` first.
        WhetstoneTimeoutError, worded by `waiting`, when `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            value = fetch()
            if on_update is not None:
                on_update(value)
            if done(value):
                return value
            if deadline is not None and time.monotonic() >= deadline:
                raise WhetstoneTimeoutError(f"{waiting(value)} after {timeout} s")
            self.wait_between_polls(poll_s)

    def wait(
        self, timeout: float | None = None, poll_s: float = 2.0, on_update: OnJob | None = None
    ) -> JobResponse:
        """Poll until the job is completed, failed, cancelled or paused (asked, or at its
        cost cap: it waits for a resume); the last record.

        `on_update` gets every record fetched, the final one included. Raises
        WhetstoneTimeoutError when `timeout` seconds pass first.
        """

        def waiting(record: JobResponse) -> str:
            return f"job {self.job_id} is still {record.status}"

        return self._poll(self.refresh, _has_settled, waiting, timeout, poll_s, on_update)

    def follow(
        self,
        poll_s: float = 2.0,
        *,
        log_type: LogSource | None = None,
        level: LogLevelName | None = None,
    ) -> Iterator[LogEntry]:
        """Every log entry, then each new one as it arrives, until the job has ended."""
        last_time: datetime | None = None
        seen_at_last: Counter[str] = Counter()
        while True:
            ended = self.refresh().status in TERMINAL_STATUSES
            # Resume from the newest time seen; skip the entries already yielded at it.
            skip = Counter(seen_at_last)
            for entry in self.client.logs(
                self.job_id, log_type=log_type, level=level, start_time=last_time
            ):
                key = entry.model_dump_json()
                if entry.time == last_time and skip[key] > 0:
                    skip[key] -= 1
                    continue
                if last_time is None or entry.time > last_time:
                    last_time = entry.time
                    seen_at_last = Counter()
                seen_at_last[key] += 1
                yield entry
            if ended:
                return
            self.wait_between_polls(poll_s)

    def stop(self) -> JobResponse:
        self._record = self.client.stop_job(self.job_id)
        return self._record

    def pause(self) -> JobResponse:
        """Checkpoint the job and release its compute; `resume` continues it."""
        self._record = self.client.pause_job(self.job_id)
        return self._record

    def resume(
        self, *, max_cost_usd: float | None = None, allow_over_budget: bool = False
    ) -> JobResponse:
        self._record = self.client.resume_job(
            self.job_id, max_cost_usd=max_cost_usd, allow_over_budget=allow_over_budget
        )
        return self._record

    def delete(self) -> None:
        self.client.delete_job(self.job_id)

    def logs(self, **filters: Any) -> Iterator[LogEntry]:
        return self.client.logs(self.job_id, **filters)

    def metrics(self, **filters: Any) -> dict[str, list[MetricPoint]]:
        return self.client.metrics(self.job_id, **filters)

    def download(
        self,
        path: str | os.PathLike[str],
        *,
        artifact: ArtifactName | None = None,
        step: int | None = None,
    ) -> Path:
        return self.client.download(self.job_id, path, artifact=artifact, step=step)

    def deploy(self, *, max_lora_rank: int | None = None) -> DeploymentResponse:
        return self.client.deploy(self.job_id, max_lora_rank=max_lora_rank)

    def deployment(self) -> DeploymentResponse:
        return self.client.get_deployment(self.job_id)

    def undeploy(self) -> None:
        self.client.delete_deployment(self.job_id)

    def wait_for_deployment(
        self,
        timeout: float | None = None,
        poll_s: float = 2.0,
        on_update: OnDeployment | None = None,
    ) -> DeploymentResponse:
        """Poll the deployment until it is no longer starting: ready, failed or deleted.
        `on_update` and `timeout` work as in `wait`."""
        still = f"the deployment of job {self.job_id} is still starting"
        return self._poll(
            self.deployment, _has_started, lambda _: still, timeout, poll_s, on_update
        )
