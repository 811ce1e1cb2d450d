"""The ports: what the services need from the outside world, as Protocols.

Each has a local adapter (whetstone/adapters/local) and an aws one
(whetstone/adapters/aws); services see only these.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import BinaryIO, Protocol, runtime_checkable

from whetstone.core.api_keys import ApiKey
from whetstone.core.deferred import DeferredModel
from whetstone.core.events import TrainerStage
from whetstone.core.job import (
    Deployment,
    JobFilter,
    JobRecord,
    LogEntry,
    MetricPoint,
)
from whetstone.core.logs import LogQuery
from whetstone.core.quota import ActiveLimits, ActiveUsage


class JobStore(Protocol):
    """Job records and their metric series.

    Every write of a record is conditional on the version it was read at, so
    two writers never lose each other's changes, and a status change is a
    conditional write on the status it expects.
    """

    def create(self, job: JobRecord, *, limits: ActiveLimits | None = None) -> None:
        """Store a new job; ConflictError if its id exists. With `limits`, in one atomic
        step with counting the organization's jobs that have not ended, so concurrent
        creates cannot pass them: QuotaExceededError when this one would."""

    def active_usage(self, org_id: str) -> ActiveUsage:
        """What the organization's jobs that have not ended hold now (a cheap read)."""

    def get(self, job_id: str) -> JobRecord | None:
        """The job, whatever its organization (callers scope it)."""

    def save(self, job: JobRecord, *, expected_version: int) -> JobRecord:
        """Write `job` if the stored one is still at `expected_version`; returns the new
        record (version + 1). StaleWriteError otherwise."""

    def list_jobs(
        self, org_id: str, filters: JobFilter, *, limit: int, cursor: str | None
    ) -> tuple[list[JobRecord], str | None]:
        """One page of the organization's jobs, newest first, and the next page's cursor."""

    def find_by_idempotency_key(self, org_id: str, key: str) -> JobRecord | None: ...

    def delete(self, job_id: str) -> None:
        """The job, its idempotency key and its metrics."""

    def put_metrics(self, job_id: str, points: Sequence[MetricPoint]) -> None:
        """Add points; a point at an existing (name, step) replaces it."""

    def list_unfinished(self) -> list[JobRecord]:
        """Every job of every organization that has not ended (for reconciliation)."""

    def query_metrics(
        self,
        job_id: str,
        *,
        names: Sequence[str] | None,
        min_step: int | None,
        max_step: int | None,
        limit: int | None = None,
    ) -> list[MetricPoint]:
        """Points ordered by name, then step; with `limit`, at most that many of each series
        (its lowest steps), reading no more than that."""

    def metric_names(self, job_id: str, *, limit: int) -> list[str]:
        """The names of the job's series, sorted, at most `limit`; each is found by a seek on
        the key, not by reading the series' points."""


class LogStore(Protocol):
    """Log lines of jobs, by source."""

    def append(self, job_id: str, entries: Sequence[LogEntry]) -> None: ...

    def query(self, job_id: str, query: LogQuery) -> tuple[list[LogEntry], str | None]:
        """Oldest first; the cursor continues where the page ended."""

    def delete(self, job_id: str) -> None: ...


class BlobStore(Protocol):
    """Datasets, artifacts and checkpoints under '/'-separated keys (a folder, or S3).

    Missing keys raise NotFoundError.
    """

    def put(self, key: str, data: bytes | BinaryIO) -> None:
        """Write the bytes (or stream them from a binary file object) to `key`."""

    def open(self, key: str) -> BinaryIO:
        """A binary stream of the object; the caller closes it."""

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def revision(self, key: str) -> str:
        """A token that changes whenever the object is written again (S3: its ETag)."""

    def list(self, prefix: str) -> Sequence[str]:
        """Keys under `prefix`, sorted."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under `prefix`; returns how many."""

    def uri(self, key: str) -> str:
        """Where the object lies for another process: s3://bucket/key or a file path."""

    def presign_get(self, key: str, expires_s: int) -> str | None:
        """A URL anyone holding it can GET until it expires; None when the store has no
        such URLs (a folder: `whet serve` serves the object instead)."""

    def presign_put(self, key: str, expires_s: int) -> str | None:
        """A URL to PUT the object's bytes to; None when the store has no such URLs."""


class ComputeState(StrEnum):
    PENDING = "pending"  # accepted, not started (node provisioning, image pull)
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    MISSING = "missing"  # nothing runs for this job


class ComputeStatus(DeferredModel):
    state: ComputeState
    message: str | None = None


class Compute(Protocol):
    """Where a job's trainer runs: a subprocess (local) or a Kubernetes Job (aws)."""

    def launch(
        self, job: JobRecord, plan_uri: str, image: str, stage: TrainerStage = TrainerStage.TRAIN
    ) -> None:
        """Start `python -m trainer <stage> --spec <plan_uri>` in `image` for the job."""

    def status(self, job: JobRecord, stage: TrainerStage = TrainerStage.TRAIN) -> ComputeStatus: ...

    def stop(self, job: JobRecord) -> None:
        """SIGTERM the trainer (it checkpoints and exits), then kill it after a grace period;
        release everything the job held. Safe to call when nothing runs."""


class ImageBuilder(Protocol):
    """Trainer images, content-addressed by the sources they are built from."""

    def find(self, tag: str) -> str | None:
        """The image reference for `tag`, or None when it must be built."""

    def build(self, tag: str) -> str:
        """Build and push the image for `tag`; returns its reference."""


class Orchestrator(Protocol):
    """Runs the workflow of a job."""

    def start(self, job: JobRecord) -> None:
        """Begin the workflow of a pending job."""

    def stop(self, job: JobRecord) -> None:
        """Ask the workflow to stop the job and clean its compute up."""

    def pause(self, job: JobRecord) -> None:
        """Ask the workflow to checkpoint the pausing job and release its compute."""

    def resume(self, job: JobRecord) -> None:
        """Relaunch the training stage of a resumed job from its latest checkpoint."""


@runtime_checkable
class TaskCallbacks(Protocol):
    """Ends or keeps alive the workflow's wait for a trainer stage, by the task token the
    workflow stored on the job (aws: Step Functions callbacks; the local runner waits on its
    subprocess and has none)."""

    def complete_task(self, token: str, output: dict[str, object]) -> None:
        """The stage succeeded: the workflow goes on with `output`."""

    def fail_task(self, token: str, error: str, cause: str) -> None:
        """The stage failed with `error` (the name the workflow's Catch matches)."""

    def heartbeat(self, token: str) -> None:
        """The stage is alive (its heartbeat timeout starts over)."""


class Deployer(Protocol):
    """Serves a completed job's model as an OpenAI-compatible endpoint: a local
    transformers server (local) or a vLLM Deployment (aws)."""

    def start(
        self, job: JobRecord, model_uri: str, *, base_model: str | None, max_lora_rank: int
    ) -> Deployment:
        """Start serving the model under `model_uri`; returns the deployment, starting.
        Readiness (and the golden check) follow in the background."""

    def status(self, job: JobRecord) -> Deployment:
        """The job's deployment as it stands now (job.deployment is the last one recorded)."""

    def stop(self, job: JobRecord) -> None:
        """Stop serving and release everything the deployment held. Safe to call when
        nothing runs."""


class RequestThrottle(Protocol):
    """Per-organization request limits (aws); the local runtime has none."""

    def take(self, org_id: str) -> float | None:
        """Count one request of the organization: None when it may proceed, or the seconds
        to wait before its limit has room again."""


class ApiKeyStore(Protocol):
    """The organizations' API keys (aws), found by the hash of their secret."""

    def put(self, key: ApiKey) -> None:
        """Store a new key; ConflictError if its hash is already stored."""

    def find(self, sha256: str) -> ApiKey | None:
        """The key whose secret has this hash, whatever its organization."""

    def list_keys(self, org_id: str) -> list[ApiKey]:
        """The organization's keys, newest first."""

    def delete(self, org_id: str, key_id: str) -> ApiKey | None:
        """Remove the organization's key `key_id`; the removed key, or None if it has none."""

    def touch(self, sha256: str, when: datetime) -> None:
        """Record that the key authorized a request at `when`; nothing if it is gone."""
