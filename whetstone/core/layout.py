"""Where a job's files lie: every key and folder the platform and the trainer share.

A job's files lie under one prefix, `jobs/<org>/<job>/`:

    plan.json                               the trainer plan
    data/                                   the normalized splits: train.jsonl,
                                            validation.jsonl, test.jsonl, manifest.json
                                            (their format: core.datasets.records)
    output/                                 the trainer's output location (`plan.output`):
        model/                              the model as trained (adapter or full weights)
        merged/                             LoRA/QLoRA merged into the base, when asked
        checkpoints/checkpoint-<step>/      kept checkpoints; complete once they hold the
                                            marker file `whetstone-complete`
        golden.json results.json run_manifest.json metrics.jsonl
        evaluation.json                     the evaluation report (core.evaluation)
    model.tar.gz merged.tar.gz              the archives downloads serve
    archives/checkpoints/checkpoint-<step>.tar.gz

Datasets lie apart, so a job's dataset outlives nothing it should not:
`datasets/<org>/<job>/<file>` (sent with the job) and `uploads/<org>/<upload_id>/data`
(the upload flow).

`JobLayout` gives each name relative to the job (`JobLayout.model`: a blob key under the
job's prefix, or a path under a local folder that mirrors it) and as a full key
(`JobLayout(org, job).model`). The trainer sees only its output and data locations, so the
names under the output folder are also given relative to it (`OutputNames`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from whetstone.core.datasets.records import split_file

JOBS_ROOT = "jobs/"
DATASETS_ROOT = "datasets/"
UPLOADS_ROOT = "uploads/"
CHECKPOINT_COMPLETE_MARKER = "whetstone-complete"
_CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)")
_CHECKPOINT_ARCHIVE_NAME = re.compile(r"checkpoint-(\d+)\.tar\.gz")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint saved at `step`."""
    return f"checkpoint-{step}"


def checkpoint_step(name: str) -> int | None:
    """The step of a checkpoint folder's name; None for any other name."""
    match = _CHECKPOINT_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


class OutputNames:
    """Names under the trainer's output location, as the trainer writes them."""

    MODEL = "model"
    MERGED = "merged"
    CHECKPOINTS = "checkpoints"
    GOLDEN = "golden.json"
    RESULTS = "results.json"
    RUN_MANIFEST = "run_manifest.json"
    METRICS = "metrics.jsonl"
    EVALUATION = "evaluation.json"

    @staticmethod
    def checkpoint(step_or_name: int | str) -> str:
        """A checkpoint's folder: by its step, or by its folder name."""
        name = step_or_name if isinstance(step_or_name, str) else checkpoint_name(step_or_name)
        return f"{OutputNames.CHECKPOINTS}/{name}"


class _HasJobIds(Protocol):
    @property
    def org_id(self) -> str: ...
    @property
    def job_id(self) -> str: ...


class _JobName:
    """A name relative to the job. Read on the class (`JobLayout.model`), the name itself:
    a blob key under the job's prefix, or a path under a local folder that mirrors it.
    Read on a layout (`layout.model`), its full key."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, layout: JobLayout | None, owner: type[JobLayout]) -> str:
        return self.name if layout is None else layout.key(self.name)


_OUTPUT = "output/"


@dataclass(frozen=True)
class JobLayout:
    """The keys of one job's files (folders end with '/')."""

    org_id: str
    job_id: str

    plan = _JobName("plan.json")
    data = _JobName("data/")
    # What the trainer's prepare stage found: examples and tokens per split, the report.
    prepared = _JobName("prepared.json")
    output = _JobName(_OUTPUT)
    model = _JobName(f"{_OUTPUT}{OutputNames.MODEL}/")
    merged = _JobName(f"{_OUTPUT}{OutputNames.MERGED}/")
    checkpoints = _JobName(f"{_OUTPUT}{OutputNames.CHECKPOINTS}/")
    golden = _JobName(_OUTPUT + OutputNames.GOLDEN)
    results = _JobName(_OUTPUT + OutputNames.RESULTS)
    run_manifest = _JobName(_OUTPUT + OutputNames.RUN_MANIFEST)
    evaluation = _JobName(_OUTPUT + OutputNames.EVALUATION)
    model_archive = _JobName("model.tar.gz")
    merged_archive = _JobName("merged.tar.gz")
    checkpoint_archives = _JobName("archives/checkpoints/")

    @classmethod
    def of(cls, job: _HasJobIds) -> JobLayout:
        """The layout of a job record (anything with org_id and job_id)."""
        return cls(job.org_id, job.job_id)

    @property
    def prefix(self) -> str:
        """Every file of the job lies under this prefix; deleting it deletes them."""
        return f"{JOBS_ROOT}{self.org_id}/{self.job_id}/"

    def key(self, name: str) -> str:
        """The full key of a name relative to the job."""
        return self.prefix + name

    def split(self, split: str) -> str:
        """The key of one split's file (train, validation or test)."""
        return self.data + split_file(split)

    def checkpoint(self, step: int) -> str:
        """The folder of the checkpoint saved at `step`."""
        return self.output + OutputNames.checkpoint(step) + "/"

    def checkpoint_archive(self, step: int) -> str:
        """The download archive of the checkpoint saved at `step`."""
        return f"{self.checkpoint_archives}{checkpoint_name(step)}.tar.gz"

    def checkpoint_archive_step(self, key: str) -> int | None:
        """The step of a checkpoint archive's key; None for any other key."""
        if not key.startswith(self.checkpoint_archives):
            return None
        match = _CHECKPOINT_ARCHIVE_NAME.fullmatch(key.removeprefix(self.checkpoint_archives))
        return int(match.group(1)) if match else None

    @property
    def datasets(self) -> str:
        """The folder of the dataset sent with the job (outside the job's prefix)."""
        return f"{DATASETS_ROOT}{self.org_id}/{self.job_id}/"

    def dataset(self, filename: str) -> str:
        """Where a dataset sent with the job is kept, under a file name safe as a key (never
        empty, never a '.' or '..' that a folder store would read as a path step)."""
        safe = _UNSAFE_FILENAME.sub("_", filename)
        return self.datasets + (safe if safe.strip(".") else "dataset")


@dataclass(frozen=True)
class UploadLayout:
    """The keys of one dataset upload: `uploads/<org>/<upload_id>/data`."""

    org_id: str
    upload_id: str

    @classmethod
    def of_key(cls, org_id: str, key: str) -> UploadLayout | None:
        """The upload an organization's key lies in; None when it lies in none."""
        root = f"{UPLOADS_ROOT}{org_id}/"
        upload_id, _, rest = key.removeprefix(root).partition("/")
        if not key.startswith(root) or not upload_id or not rest:
            return None
        return cls(org_id, upload_id)

    @property
    def prefix(self) -> str:
        return f"{UPLOADS_ROOT}{self.org_id}/{self.upload_id}/"

    @property
    def data(self) -> str:
        """The uploaded bytes."""
        return self.prefix + "data"


INCOMING_ROOT = "incoming/"


@dataclass(frozen=True)
class OrgLayout:
    """The keys of the artifacts bucket an organization's datasets may be read from."""

    org_id: str

    @property
    def dataset_prefixes(self) -> tuple[str, ...]:
        """Its datasets sent with jobs, its uploads, its S3 drops and its jobs' files; none
        for an id that is not one key segment (it would reach into another's)."""
        if not self.org_id or "/" in self.org_id or self.org_id in {".", ".."}:
            return ()
        roots = (DATASETS_ROOT, UPLOADS_ROOT, INCOMING_ROOT, JOBS_ROOT)
        return tuple(f"{root}{self.org_id}/" for root in roots)
