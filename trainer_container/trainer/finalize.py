"""`python -m trainer finalize --spec <plan>`: verify the trained model and build the
download archives under the job (core.archives names them).

Each archive is a tar.gz streamed as it is made: a multipart upload on S3, a file renamed
into place in a folder. Either is visible only once whole (`Location.is_whole`), so a
finalize that is retried skips the archives a previous run finished and rebuilds only the
one it was building. The archives' sizes go to the log; the workflow's `complete` step
records them on the job.
"""

from __future__ import annotations

from whetstone.core.archives import (
    ArchivePlan,
    files_under,
    holds_loadable_model,
    output_archives,
    write_tar_gz,
)
from whetstone.core.layout import OutputNames
from whetstone.core.plan import TrainerPlan

from .events import EventEmitter
from .storage import Location, StorageError, open_location


class ArtifactsMissing(Exception):
    """The trainer left no loadable model."""


def _build(job_files: Location, output: Location, plan: ArchivePlan) -> int:
    with job_files.open_write(plan.name) as sink:
        write_tar_gz(sink, plan.files, lambda name: output.open_read(f"{plan.folder}/{name}"))
    return sum(plan.files.values())


def finalize_outputs(plan: TrainerPlan, emitter: EventEmitter) -> dict[str, int]:
    """Verify the model files and build every archive not yet whole; returns each
    archive's name under the job and the bytes it holds (before compression)."""
    if plan.job_files is None:
        raise StorageError("the plan names no job folder to write the archives to")
    output = open_location(plan.output)
    job_files = open_location(plan.job_files)
    files = output.list_files("")
    model = files_under(files, OutputNames.MODEL)
    if not holds_loadable_model(model):
        raise ArtifactsMissing(
            f"the trainer wrote no loadable model under {output.child_uri(OutputNames.MODEL)} "
            f"(found {len(model)} files); see the training log"
        )
    built: dict[str, int] = {}
    for archive in output_archives(files):
        if job_files.is_whole(archive.name):
            emitter.log("info", "archive already built", archive=archive.name)
            continue
        built[archive.name] = _build(job_files, output, archive)
        emitter.log("info", "archive built", archive=archive.name, bytes=built[archive.name])
    return built
