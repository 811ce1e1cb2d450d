"""The steps of a job's workflow, called in order by Step Functions (aws) or the
in-process runner (local):

    begin → prepare → resolve image → [build] → launch → poll ... → finalize
    any step → fail          stop requested → cancel

Each step raises a named exception (`DatasetInvalid`, `ImageBuildFailed`,
`LaunchFailed`, `TrainingFailed`, `ArtifactsMissing`) that the state machine
catches by name; `fail` records the code, the message and the step.
"""

from __future__ import annotations

import gzip
import os
import re
import tarfile
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from whetstone.core.catalog.base_models import BASE_MODELS_BY_ID
from whetstone.core.errors import InvalidInputError, TransientError, WhetstoneError
from whetstone.core.job import (
    Artifacts,
    JobError,
    JobRecord,
    LogEntry,
    LogSource,
    live_cost,
    utcnow,
)
from whetstone.core.lifecycle import JobStatus, check_transition, is_terminal
from whetstone.core.plan import EventSinkSettings, TrainerOptions, TrainerPlan
from whetstone.core.spec import LORA_METHODS
from whetstone.ports import Compute, ComputeState, ImageBuilder
from whetstone.service.datasets import prepare_splits
from whetstone.service.jobs import (
    ARCHIVE_NAME,
    CHECKPOINT_COMPLETE_MARKER,
    CHECKPOINTS_DIR,
    DATA_DIR,
    MERGED_ARCHIVE_NAME,
    MERGED_DIR,
    MODEL_DIR,
    OUTPUT_DIR,
    PLAN_NAME,
    checkpoint_archive_name,
    job_prefix,
    transition,
    update_job,
)
from whetstone.service.platform import Platform

_CHECKPOINT_FOLDER = re.compile(r"checkpoint-(\d+)")
_RESUME_ONLY = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state")


class WorkflowError(WhetstoneError):
    """A step failed; the class name is what the state machine's Catch matches."""

    step = "workflow"


class JobStopped(WorkflowError):
    code = "stopped"


class DatasetInvalid(WorkflowError):
    code = "dataset_invalid"
    step = "prepare"


class ImageBuildFailed(WorkflowError):
    code = "image_build_failed"
    step = "build"


class LaunchFailed(WorkflowError):
    code = "launch_failed"
    step = "launch"


class TrainingFailed(WorkflowError):
    code = "training_failed"
    step = "train"


class ArtifactsMissing(WorkflowError):
    code = "artifacts_missing"
    step = "finalize"


# Written once per job that ends, with what it used: the infra's metric filters sum these
# lines into GPU hours and spend (infra/constructs/job_metrics.py).
JOB_ENDED_LINE = "job ended"


def log(platform: Platform, job_id: str, source: LogSource, message: str, **fields: object) -> None:
    """One line in the job's build, deployment or training log."""
    level = "error" if fields.pop("error", False) else "info"
    entry = LogEntry(time=utcnow(), source=source, level=level, message=message, fields=fields)
    platform.logs.append(job_id, [entry])


def _log_ended(platform: Platform, job: JobRecord) -> None:
    log(
        platform,
        job.job_id,
        "deployment",
        JOB_ENDED_LINE,
        status=job.status.value,
        gpu_hours=job.cost.compute_hours,
        cost_usd=job.cost.current_usd,
    )


def _job(platform: Platform, job_id: str) -> JobRecord:
    job = platform.jobs.get(job_id)
    if job is None:
        raise JobStopped(f"job {job_id} no longer exists")
    return job


def _stop_requested(platform: Platform, job_id: str) -> bool:
    job = _job(platform, job_id)
    return job.stop_requested or job.status is JobStatus.STOPPING


def begin(platform: Platform, job_id: str) -> None:
    """pending → preparing."""
    if _stop_requested(platform, job_id):
        raise JobStopped("stop requested before the job started")
    transition(platform, job_id, JobStatus.PREPARING, "preparing the dataset and the plan")


class Prepared(BaseModel):
    plan_uri: Annotated[str, Field(description="Where the trainer plan lies.")]


def trainer_model_source(base_model: str) -> str:
    """What the trainer loads: a catalog id becomes its Hugging Face repo."""
    model = BASE_MODELS_BY_ID.get(base_model)
    return f"hf://{model.hf_repo}" if model else base_model


def prepare(platform: Platform, job_id: str, events: EventSinkSettings) -> Prepared:
    """Validate and split the dataset, write the normalized splits and the trainer plan."""
    job = _job(platform, job_id)
    spec = job.spec
    prefix = job_prefix(job.org_id, job_id)
    log(platform, job_id, "build", "preparing dataset", dataset=job.dataset.source)
    source: str | bytes = job.dataset.source
    if job.dataset.blob_key is not None:
        with platform.blobs.open(job.dataset.blob_key) as stream:
            source = stream.read()
    try:
        prepared = prepare_splits(
            source,
            spec.dataset,
            cutoff_length=spec.sequence_length,
            seed=spec.advanced.seed,
            blobs=platform.blobs,
            prefix=prefix + DATA_DIR,
            settings=platform.settings,
            filename=job.dataset.filename,
        )
    except InvalidInputError as error:
        raise DatasetInvalid(error.message, details=error.details) from error
    manifest = prepared.manifest
    log(platform, job_id, "build", "dataset split", counts=manifest.counts, sha256=manifest.sha256)

    def record_dataset(current: JobRecord) -> JobRecord:
        dataset = current.dataset.model_copy(
            update={
                "format": manifest.format,
                "num_examples": sum(manifest.counts.values()),
                "mean_tokens": manifest.mean_tokens,
                "splits": manifest.counts,
            }
        )
        return current.model_copy(update={"dataset": dataset})

    update_job(platform, job_id, record_dataset)
    plan = TrainerPlan(
        job_id=job_id,
        spec=spec,
        data=platform.blobs.uri(prefix + DATA_DIR),
        model_source=trainer_model_source(spec.base_model),
        output=platform.blobs.uri(prefix + OUTPUT_DIR),
        events=events,
        options=TrainerOptions(merge_adapter=spec.method in LORA_METHODS and spec.lora.save_merged),
    )
    platform.blobs.put(prefix + PLAN_NAME, plan.model_dump_json(indent=2).encode())
    log(platform, job_id, "build", "trainer plan written", model=plan.model_source)
    return Prepared(plan_uri=platform.blobs.uri(prefix + PLAN_NAME))


class ImageChoice(BaseModel):
    tag: Annotated[str, Field(description="Content-addressed tag of the trainer image.")]
    image: Annotated[str | None, Field(description="The image, or null if it must be built.")]


def resolve_image(platform: Platform, job_id: str, builder: ImageBuilder, tag: str) -> ImageChoice:
    image = builder.find(tag)
    if image is None:
        log(platform, job_id, "build", "trainer image must be built", tag=tag)
    else:
        log(platform, job_id, "build", "trainer image found", tag=tag, image=image)
    return ImageChoice(tag=tag, image=image)


def build_image(platform: Platform, job_id: str, builder: ImageBuilder, tag: str) -> str:
    """preparing → building, then build (local runtime; aws runs CodeBuild from the ASL)."""
    transition(platform, job_id, JobStatus.BUILDING, f"building trainer image {tag}")
    try:
        image = builder.build(tag)
    except TransientError:
        raise
    except Exception as error:
        raise ImageBuildFailed(f"building the trainer image failed: {error}") from error
    log(platform, job_id, "build", "trainer image built", image=image)
    return image


def launch(platform: Platform, job_id: str, compute: Compute, plan_uri: str, image: str) -> None:
    """→ deploying, and start the trainer."""
    if _stop_requested(platform, job_id):
        raise JobStopped("stop requested before launch")

    def deploying(job: JobRecord) -> JobRecord:
        if job.status is not JobStatus.DEPLOYING:  # a resumed job may be deploying already
            check_transition(job.status, JobStatus.DEPLOYING)
            job = job.with_status(JobStatus.DEPLOYING, "starting the trainer")
        return job.model_copy(update={"training_started_at": job.training_started_at or utcnow()})

    job = update_job(platform, job_id, deploying)
    try:
        compute.launch(job, plan_uri, image)
    except TransientError:
        raise
    except Exception as error:
        raise LaunchFailed(f"the trainer could not be started: {error}") from error
    log(platform, job_id, "deployment", "trainer launched", image=image)


class PollState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    STOP = "stop"


class Poll(BaseModel):
    state: PollState


def poll(platform: Platform, job_id: str, compute: Compute) -> Poll:
    """Where the trainer is. Raises TrainingFailed when it failed."""
    job = _job(platform, job_id)
    if job.stop_requested or job.status is JobStatus.STOPPING:
        return Poll(state=PollState.STOP)
    status = compute.status(job)
    if status.state in (ComputeState.PENDING, ComputeState.RUNNING):
        return Poll(state=PollState.RUNNING)
    if status.state is ComputeState.SUCCEEDED:
        return Poll(state=PollState.SUCCEEDED)
    reason = job.error.message if job.error else (status.message or "the trainer stopped")
    raise TrainingFailed(reason, code=job.error.code if job.error else "training_failed")


def _model_files(platform: Platform, prefix: str) -> dict[str, int]:
    return {
        key.removeprefix(prefix): platform.blobs.size(key) for key in platform.blobs.list(prefix)
    }


def _under(files: dict[str, int], folder: str) -> dict[str, int]:
    return {
        name.removeprefix(folder): size for name, size in files.items() if name.startswith(folder)
    }


def _complete_checkpoints(files: dict[str, int]) -> dict[int, dict[str, int]]:
    """The files of each checkpoint the trainer marked complete, by step; the state only a
    resume needs (optimizer, scheduler, RNG) is left out of what users download."""
    folders: dict[int, dict[str, int]] = {}
    for name, size in _under(files, CHECKPOINTS_DIR).items():
        folder, _, rest = name.partition("/")
        step = _CHECKPOINT_FOLDER.fullmatch(folder)
        if step and rest:
            folders.setdefault(int(step.group(1)), {})[rest] = size
    return {
        step: {
            name: size
            for name, size in contents.items()
            if name != CHECKPOINT_COMPLETE_MARKER and not name.startswith(_RESUME_ONLY)
        }
        for step, contents in folders.items()
        if CHECKPOINT_COMPLETE_MARKER in contents
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
            # Weights barely compress: the fastest level keeps large models in the step's time.
            with (
                os.fdopen(write_end, "wb") as sink,
                gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=1) as zipped,
                tarfile.open(fileobj=zipped, mode="w|") as tar,
            ):
                for name in sorted(files):
                    info = tarfile.TarInfo(name)
                    info.size = files[name]
                    with platform.blobs.open(source + name) as stream:
                        tar.addfile(info, stream)
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


def finalize(platform: Platform, job_id: str) -> JobRecord:
    """Verify the artifacts, archive them for download, write the final cost → completed.

    One archive each: the model, the merged model when the trainer saved one, and every
    complete checkpoint (GET .../download?artifact=... serves them).
    """
    job = _job(platform, job_id)
    prefix = job_prefix(job.org_id, job_id)
    output = prefix + OUTPUT_DIR
    files = _model_files(platform, output)
    model = _under(files, MODEL_DIR)
    has_config = any(
        name.rsplit("/", 1)[-1] in ("config.json", "adapter_config.json") for name in model
    )
    has_weights = any(name.endswith(".safetensors") for name in model)
    if not (has_config and has_weights):
        raise ArtifactsMissing(
            f"the trainer wrote no loadable model under {output}{MODEL_DIR} (found "
            f"{len(model)} files); see the training log"
        )
    _write_archive(platform, output + MODEL_DIR, model, prefix + ARCHIVE_NAME)
    archives = [ARCHIVE_NAME]
    merged = _under(files, MERGED_DIR)
    if merged:
        _write_archive(platform, output + MERGED_DIR, merged, prefix + MERGED_ARCHIVE_NAME)
        archives.append(MERGED_ARCHIVE_NAME)
    for step, contents in sorted(_complete_checkpoints(files).items()):
        name = checkpoint_archive_name(step)
        _write_archive(
            platform, f"{output}{CHECKPOINTS_DIR}checkpoint-{step}/", contents, prefix + name
        )
        archives.append(name)
    log(platform, job_id, "deployment", "artifacts verified", files=len(files), archives=archives)

    def complete(current: JobRecord) -> JobRecord:
        done = current.with_status(JobStatus.COMPLETED, "training finished")
        done = done.model_copy(
            update={
                "artifacts": Artifacts(location=platform.blobs.uri(output), files=files),
                "cost": live_cost(done, done.updated_at),
                "progress": done.progress.model_copy(update={"fraction": 1.0}),
            }
        )
        return done

    completed = update_job(platform, job_id, complete)
    _log_ended(platform, completed)
    return completed


def fail(
    platform: Platform, job_id: str, compute: Compute, code: str, message: str, step: str
) -> None:
    """Record why the job failed, clean its compute up → failed (no-op once ended)."""
    job = platform.jobs.get(job_id)
    if job is None or is_terminal(job.status):
        return
    compute.stop(job)
    log(platform, job_id, "deployment", "job failed", code=code, step=step, error=True)

    def failed(current: JobRecord) -> JobRecord:
        if current.status is JobStatus.STOPPING:
            return current.with_status(JobStatus.CANCELLED, "stopped")
        error = current.error or JobError(code=code, message=message, step=step)
        moved = current.with_status(JobStatus.FAILED, message)
        return moved.model_copy(update={"error": error})

    _end(platform, job_id, failed)


def cancel(platform: Platform, job_id: str, compute: Compute) -> None:
    """Clean the compute up → cancelled."""
    job = platform.jobs.get(job_id)
    if job is None or is_terminal(job.status):
        return
    compute.stop(job)
    log(platform, job_id, "deployment", "compute released after stop")

    def cancelled(current: JobRecord) -> JobRecord:
        if current.status is not JobStatus.STOPPING:
            current = current.with_status(JobStatus.STOPPING, "stop requested")
        return current.with_status(JobStatus.CANCELLED, "stopped by the user")

    _end(platform, job_id, cancelled)


def _end(platform: Platform, job_id: str, end: Callable[[JobRecord], JobRecord]) -> None:
    """Move an unfinished job to the terminal status `end` gives it, with its final cost
    (failed and stopped jobs are billed too), and write its `job ended` line once: not
    when the job had ended meanwhile."""
    ended_here = False  # set by the last (retried) call of `change`

    def change(current: JobRecord) -> JobRecord:
        nonlocal ended_here
        ended_here = not is_terminal(current.status)
        if not ended_here:
            return current
        ended = end(current)
        return ended.model_copy(update={"cost": live_cost(ended, ended.updated_at)})

    ended = update_job(platform, job_id, change)
    if ended_here:
        _log_ended(platform, ended)
