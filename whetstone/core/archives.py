"""The download archives of a job's output: which there are, what each holds, and the
streamed tar.gz each is written as.

Both the trainer's finalize stage (in the image) and the service (checkpoints a stopped job
kept) build archives with these, each through its own storage; `files` is always the size of
each file under the trainer's output, by its name relative to the output.
"""

from __future__ import annotations

import gzip
import tarfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO

from whetstone.core.layout import (
    CHECKPOINT_COMPLETE_MARKER,
    JobLayout,
    OutputNames,
    checkpoint_name,
    checkpoint_step,
)

# Checkpoint state only a resume needs: left out of what users download.
_RESUME_ONLY = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state")
# Metadata an archive object carries once it is whole (S3 user metadata, set when the
# multipart upload starts, so only a completed upload has an object that carries it).
ARCHIVE_COMPLETE_METADATA = "whetstone-archive"

OpenFile = Callable[[str], AbstractContextManager[IO[bytes]]]


@dataclass(frozen=True)
class ArchivePlan:
    """One archive to make: its name under the job, the folder (a name under the output)
    its files lie in, and those files by their names relative to the folder."""

    name: str
    folder: str
    files: dict[str, int]


def files_under(files: dict[str, int], folder: str) -> dict[str, int]:
    """The files in `folder` (a name under the output), by their names relative to it."""
    inside = folder + "/"
    return {
        name.removeprefix(inside): size for name, size in files.items() if name.startswith(inside)
    }


def holds_loadable_model(model: dict[str, int]) -> bool:
    """Whether a model folder's files include a config and weights."""
    has_config = any(
        name.rsplit("/", 1)[-1] in ("config.json", "adapter_config.json") for name in model
    )
    return has_config and any(name.endswith(".safetensors") for name in model)


def complete_checkpoints(files: dict[str, int]) -> dict[int, dict[str, int]]:
    """The files of each checkpoint the trainer marked complete, by step, less the state
    only a resume needs."""
    folders: dict[int, dict[str, int]] = {}
    for name, size in files_under(files, OutputNames.CHECKPOINTS).items():
        folder, _, rest = name.partition("/")
        step = checkpoint_step(folder)
        if step is not None and rest:
            folders.setdefault(step, {})[rest] = size
    return {
        step: {
            name: size
            for name, size in contents.items()
            if name != CHECKPOINT_COMPLETE_MARKER and not name.startswith(_RESUME_ONLY)
        }
        for step, contents in folders.items()
        if CHECKPOINT_COMPLETE_MARKER in contents
    }


def checkpoint_archives(files: dict[str, int]) -> list[ArchivePlan]:
    """An archive per complete checkpoint, by step: all a stopped job gets."""
    return [
        ArchivePlan(
            name=f"{JobLayout.checkpoint_archives}{checkpoint_name(step)}.tar.gz",
            folder=OutputNames.checkpoint(step),
            files=contents,
        )
        for step, contents in sorted(complete_checkpoints(files).items())
    ]


def output_archives(files: dict[str, int]) -> list[ArchivePlan]:
    """The archives of a finished job: the model, the merged model when the trainer saved
    one, and every complete checkpoint."""
    model = files_under(files, OutputNames.MODEL)
    plans = [ArchivePlan(JobLayout.model_archive, OutputNames.MODEL, model)]
    merged = files_under(files, OutputNames.MERGED)
    if merged:
        plans.append(ArchivePlan(JobLayout.merged_archive, OutputNames.MERGED, merged))
    return plans + checkpoint_archives(files)


def write_tar_gz(sink: IO[bytes], files: dict[str, int], open_file: OpenFile) -> None:
    """Stream `files` (name → size), each opened by `open_file(name)`, into `sink` as a
    tar.gz; only one read buffer is ever held."""
    # Weights barely compress: the fastest level keeps large models within the stage's time.
    with (
        gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=1) as zipped,
        tarfile.open(fileobj=zipped, mode="w|") as tar,
    ):
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = files[name]
            with open_file(name) as stream:
                tar.addfile(info, stream)
