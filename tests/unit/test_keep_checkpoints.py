"""A stopped job's complete checkpoints are archived for download; a failure to archive
them never keeps the stop from ending the job."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from support.jobs import make_job

from whetstone.core.layout import CHECKPOINT_COMPLETE_MARKER, JobLayout, OutputNames
from whetstone.core.logs import LogQuery
from whetstone.runtime import get_platform
from whetstone.service.artifacts import checkpoint_steps, keep_checkpoints


def put_checkpoint(job_layout: JobLayout, step: int, *, complete: bool) -> None:
    folder = job_layout.output + OutputNames.checkpoint(step) + "/"
    blobs = get_platform().blobs
    blobs.put(folder + "adapter_model.safetensors", f"weights at {step}".encode())
    if complete:
        blobs.put(folder + CHECKPOINT_COMPLETE_MARKER, b"")


class UnlistableBlobs:
    """A store whose listing fails, as a store that is down does."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def list(self, prefix: str) -> Sequence[str]:
        raise OSError("store unreachable")


def test_given_a_stopped_trainers_output_when_kept_then_only_complete_checkpoints_archive() -> None:
    platform = get_platform()
    job = make_job("acme")
    platform.jobs.create(job)
    put_checkpoint(JobLayout.of(job), 2, complete=True)
    put_checkpoint(JobLayout.of(job), 4, complete=False)

    keep_checkpoints(platform, job)

    assert checkpoint_steps(platform, job) == [2]


def test_given_a_store_that_fails_when_kept_then_the_failure_is_logged_not_raised() -> None:
    platform = get_platform()
    job = make_job("acme")
    platform.jobs.create(job)
    failing = dataclasses.replace(platform, blobs=UnlistableBlobs(platform.blobs))  # type: ignore[arg-type]

    keep_checkpoints(failing, job)

    entries, _ = platform.logs.query(job.job_id, LogQuery(source="deployment", limit=10))
    assert [entry.message for entry in entries] == ["checkpoints not archived"]
