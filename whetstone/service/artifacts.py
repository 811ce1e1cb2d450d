"""A job's artifacts: the archives the workflow makes of the trainer's output, and which
archive a download gets.

Every archive lies at the key `JobLayout` names for it: the model, the merged model when
the trainer saved one, and one per complete checkpoint.
"""

from __future__ import annotations

import os
import threading
from enum import StrEnum

from whetstone.core.archives import (
    ArchivePlan,
    checkpoint_archives,
    output_archives,
    write_tar_gz,
)
from whetstone.core.deferred import DeferredModel
from whetstone.core.errors import ConflictError, InvalidInputError, NotFoundError
from whetstone.core.job import Caller, JobRecord
from whetstone.core.layout import JobLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.core.spec import ADAPTER_METHODS, Method
from whetstone.service.job_log import log
from whetstone.service.jobs import get_job
from whetstone.service.platform import Platform

DOWNLOAD_EXPIRY_S = 3600


class ArtifactKind(StrEnum):
    """What a download holds."""

    MODEL = "model"  # the final model as trained: the adapter, or full weights for full
    ADAPTER = "adapter"  # LoRA, QLoRA and prompt tuning: the adapter (same files as model)
    MERGED = "merged"  # LoRA and QLoRA saved with the adapter merged into the base
    CHECKPOINT = "checkpoint"  # one of the checkpoints kept at the end of training or a stop


class DownloadLink(DeferredModel):
    """Where one archive of a job lies (`key`), and a presigned URL to it where the store has
    them (None in a folder store); the API answers it as a DownloadLinkResponse, without the
    key."""

    url: str | None
    key: str
    expires_in_s: int
    size_bytes: int
    artifact: ArtifactKind
    step: int | None  # checkpoint only
    filename: str


# -- archiving the trainer's output ------------------------------------------------------


def output_files(platform: Platform, layout: JobLayout) -> dict[str, int]:
    """The size of each file under the job's output, by its name relative to the output."""
    prefix = layout.output
    return {
        key.removeprefix(prefix): platform.blobs.size(key) for key in platform.blobs.list(prefix)
    }


def _write_archive(platform: Platform, source: str, files: dict[str, int], key: str) -> None:
    """A tar.gz of `files` (names under `source`), stored at `key` as it is made.

    A thread writes the archive into a pipe that the store reads from, so neither memory
    nor the Lambda's small /tmp ever holds a whole model; an archive that fails half-way
    is removed rather than left truncated.
    """
    read_end, write_end = os.pipe()
    failures: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_end, "wb") as sink:
                write_tar_gz(sink, files, lambda name: platform.blobs.open(source + name))
        except BaseException as error:  # reported by the caller, after the store has read
            failures.append(error)

    producer = threading.Thread(target=produce, name=f"archive {key}", daemon=True)
    producer.start()
    try:
        with os.fdopen(read_end, "rb") as archive:
            platform.blobs.put(key, archive)
    finally:
        producer.join()
    if failures:
        platform.blobs.delete_prefix(key)
        raise failures[0]


def write_archives(platform: Platform, layout: JobLayout, plans: list[ArchivePlan]) -> list[str]:
    """Write each planned archive under the job; returns their names under the job."""
    for plan in plans:
        source = layout.output + plan.folder + "/"
        _write_archive(platform, source, plan.files, layout.key(plan.name))
    return [plan.name for plan in plans]


def archive_outputs(platform: Platform, layout: JobLayout, files: dict[str, int]) -> list[str]:
    """Archive the model, the merged model if any and every complete checkpoint of the
    output `files` (from `output_files`); returns the archives' names under the job."""
    return write_archives(platform, layout, output_archives(files))


def keep_checkpoints(platform: Platform, job: JobRecord) -> None:
    """Archive the complete checkpoints a stopped trainer left, the only archives a stopped
    job gets, for download."""
    layout = JobLayout.of(job)
    try:
        plans = checkpoint_archives(output_files(platform, layout))
        archives = write_archives(platform, layout, plans)
    # The stop must still end the job: the checkpoints stay in its output folder.
    except Exception as error:
        log(
            platform,
            job.job_id,
            "deployment",
            "checkpoints not archived",
            reason=str(error),
            error=True,
        )
        return
    if archives:
        log(platform, job.job_id, "deployment", "checkpoints kept", archives=archives)


# -- downloads ---------------------------------------------------------------------------


def checkpoint_steps(platform: Platform, job: JobRecord) -> list[int]:
    """Steps of the checkpoints that can be downloaded, ascending."""
    layout = JobLayout.of(job)
    keys = platform.blobs.list(layout.checkpoint_archives)
    steps = (layout.checkpoint_archive_step(key) for key in keys)
    return sorted(step for step in steps if step is not None)


def _steps_text(steps: list[int]) -> str:
    if not steps:
        return "it kept no checkpoints"
    if len(steps) == 1:
        return f"its only checkpoint is at step {steps[0]}"
    return "its checkpoints are at steps " + ", ".join(str(step) for step in steps)


def _no_merged_message(job: JobRecord) -> str:
    method = job.spec.tuning_method
    if method is Method.FULL:
        return (
            f"job {job.job_id} was trained with full fine-tuning: its model (artifact=model) "
            "already holds every weight, there is no adapter to merge"
        )
    if method is Method.PROMPT_TUNING:
        return (
            f"job {job.job_id} was trained with prompt tuning, whose soft prompt cannot be "
            "merged into the weights; download artifact=adapter and load it on the base model "
            "with peft"
        )
    return (
        f"job {job.job_id} saved no merged model: set lora.save_merged to true when creating "
        "a job, or download artifact=adapter and merge it with peft: "
        "PeftModel.from_pretrained(base, folder).merge_and_unload()"
    )


def _archive(
    platform: Platform, job: JobRecord, artifact: ArtifactKind, step: int | None
) -> tuple[str, str]:
    """(storage key, file name) of the archive asked for; the 4xx that says why not."""
    layout = JobLayout.of(job)
    if artifact is ArtifactKind.CHECKPOINT:
        return _checkpoint_archive(platform, job, step)
    if step is not None:
        raise InvalidInputError(
            "step picks a checkpoint: ask for artifact=checkpoint&step=N, or drop step",
            code="step_not_allowed",
        )
    model_key = layout.model_archive
    if job.status is not JobStatus.COMPLETED or not platform.blobs.exists(model_key):
        raise _no_model(platform, job)
    if artifact is ArtifactKind.MODEL:
        return model_key, f"{job.job_id}.tar.gz"
    if artifact is ArtifactKind.ADAPTER:
        if job.spec.tuning_method not in ADAPTER_METHODS:
            raise ConflictError(
                f"job {job.job_id} was trained with full fine-tuning and has no adapter; "
                "download artifact=model for its full weights",
                code="no_adapter",
            )
        return model_key, f"{job.job_id}-adapter.tar.gz"
    if not platform.blobs.exists(layout.merged_archive):
        raise ConflictError(_no_merged_message(job), code="no_merged_model")
    return layout.merged_archive, f"{job.job_id}-merged.tar.gz"


def _no_model(platform: Platform, job: JobRecord) -> ConflictError:
    """Why a job that is not completed has no model: a stopped one names the checkpoints it
    kept, in the words a checkpoint download uses."""
    if job.status is not JobStatus.CANCELLED:
        return ConflictError(
            f"job {job.job_id} is {job.status}; its model can be downloaded once it is completed",
            code="no_artifacts",
        )
    steps = checkpoint_steps(platform, job)
    fetch = ": download one with artifact=checkpoint&step=N" if steps else ""
    return ConflictError(
        f"job {job.job_id} was stopped before training finished, so it has no final model; "
        f"{_steps_text(steps)}{fetch}",
        code="no_artifacts",
        details={"available_steps": steps},
    )


def _checkpoint_archive(platform: Platform, job: JobRecord, step: int | None) -> tuple[str, str]:
    """(storage key, file name) of a checkpoint's archive, kept by a completed or a stopped
    job; the 4xx that says why not, naming the steps there are."""
    if job.status not in (JobStatus.COMPLETED, JobStatus.CANCELLED):
        raise ConflictError(
            f"job {job.job_id} is {job.status}; its checkpoints can be downloaded once it is "
            "completed or stopped",
            code="no_artifacts",
        )
    steps = checkpoint_steps(platform, job)
    if step is None:
        raise InvalidInputError(
            f"artifact=checkpoint needs step=N; {_steps_text(steps)}",
            code="step_required",
            details={"available_steps": steps},
        )
    if step not in steps:
        raise NotFoundError(
            f"job {job.job_id} has no checkpoint at step {step}; {_steps_text(steps)}",
            code="checkpoint_not_found",
            details={"available_steps": steps},
        )
    return JobLayout.of(job).checkpoint_archive(step), f"{job.job_id}-checkpoint-{step}.tar.gz"


def download_link(
    platform: Platform,
    caller: Caller,
    job_id: str,
    *,
    artifact: ArtifactKind = ArtifactKind.MODEL,
    step: int | None = None,
) -> DownloadLink:
    """A link to one archive of a completed job: its model, adapter, merged model or a
    checkpoint, or to a checkpoint a stopped job kept; presigned (one hour) where the store
    can."""
    job = get_job(platform, caller, job_id)
    key, filename = _archive(platform, job, artifact, step)
    return DownloadLink(
        url=platform.blobs.presign_get(key, DOWNLOAD_EXPIRY_S),
        key=key,
        expires_in_s=DOWNLOAD_EXPIRY_S,
        size_bytes=platform.blobs.size(key),
        artifact=artifact,
        step=step,
        filename=filename,
    )
