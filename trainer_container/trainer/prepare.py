"""`python -m trainer prepare --spec <plan>`: read the job's dataset from its source,
validate it, split it into the job's `data/` files and count what each split holds.

Memory stays bounded whatever the dataset's size: the source is read twice as a stream (a
local file, or a streamed GET of an s3:// object), once to validate it and plan the split,
once to write each example to its split file as it goes (a multipart upload on S3).
Parquet, which its reader must seek in, and hf:// datasets are first copied to a local
temporary file, never into memory. Tokens are counted with the base model's tokenizer when
it can be loaded, else estimated; `prepared.json` says which.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from whetstone.core.datasets.hub import load_hf
from whetstone.core.datasets.normalize import Normalized
from whetstone.core.datasets.options import ValidationOptions
from whetstone.core.datasets.prepared import PREPARED_LISTED_ISSUES, PreparedData, SplitSize
from whetstone.core.datasets.records import MANIFEST_NAME, SPLIT_NAMES, SplitManifest, split_file
from whetstone.core.datasets.splitter import SplitPlanner
from whetstone.core.datasets.tokens import (
    BYTES_PER_TOKEN,
    ExactTokenCounter,
    load_token_counter,
)
from whetstone.core.datasets.validator import validate_dataset
from whetstone.core.datasets.walk import iter_examples
from whetstone.core.errors import InvalidInputError
from whetstone.core.layout import JobLayout
from whetstone.core.plan import PlanDataset, TrainerPlan
from whetstone.core.spec import DatasetFormat, Method

from .events import EventEmitter
from .storage import StorageError, open_location

_CHUNK = 1024 * 1024
Opener = Callable[[], contextlib.AbstractContextManager[IO[bytes]]]


class _Hashing(io.RawIOBase):
    """Reads through to a stream, hashing what passes."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__()
        self._stream = stream
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.digest.update(data)
        return size


def _spooled(dataset: PlanDataset, write: Callable[[IO[bytes]], None]) -> Iterator[Opener]:
    with tempfile.TemporaryDirectory(prefix="whetstone-prepare-") as tmp:
        path = Path(tmp) / "data"
        with path.open("wb") as out:
            write(out)
        yield lambda: path.open("rb")


def _needs_seeking(dataset: PlanDataset, declared: DatasetFormat) -> bool:
    return declared is DatasetFormat.PARQUET or (dataset.filename or dataset.source).endswith(
        ".parquet"
    )


@contextlib.contextmanager
def open_source(dataset: PlanDataset, declared: DatasetFormat) -> Iterator[Opener]:
    """A way to open the dataset from its start, as often as needed."""
    source = dataset.source
    if source.startswith("hf://"):
        yield from _spooled(dataset, lambda out: load_hf(source, out, dataset.max_file_bytes))
        return
    if source.startswith("s3://"):
        parent, _, name = source.rpartition("/")
        location = open_location(parent)
        if _needs_seeking(dataset, declared):

            def copy(out: IO[bytes]) -> None:
                with location.open_read(name) as stream:
                    while chunk := stream.read(_CHUNK):
                        out.write(chunk)

            yield from _spooled(dataset, copy)
            return
        yield lambda: location.open_read(name)
        return
    path = Path(source)
    if not path.is_file():
        raise InvalidInputError(f"no dataset file at {source}", code="dataset_missing")
    yield lambda: path.open("rb")


@contextlib.contextmanager
def _model_files(plan: TrainerPlan, *names: str) -> Iterator[Path]:
    """A folder holding the named files of the base model (fetched alone, never the
    weights); raises when the model or a file cannot be reached here."""
    source = plan.resolved_model_source
    if source.startswith("hf://"):
        from huggingface_hub import hf_hub_download

        repo, _, revision = source.removeprefix("hf://").partition("@")
        files = [hf_hub_download(repo, name, revision=revision or None) for name in names]
        yield Path(files[0]).parent
    elif source.startswith("s3://"):
        with tempfile.TemporaryDirectory(prefix="whetstone-model-files-") as tmp:
            for name in names:
                (Path(tmp) / name).write_bytes(open_location(source).read_bytes(name))
            yield Path(tmp)
    elif Path(source).is_dir():
        yield Path(source)
    else:
        raise FileNotFoundError(f"no model files at {source}")


def token_counter(plan: TrainerPlan) -> ExactTokenCounter | None:
    """The base model's tokenizer, or None when it cannot be loaded here (then tokens are
    estimated)."""
    try:
        with _model_files(plan, "tokenizer.json") as folder:
            return load_token_counter(folder)
    except Exception:  # a missing or odd tokenizer only makes the counts estimates
        return None


def model_config(plan: TrainerPlan) -> dict[str, Any] | None:
    """The base model's config.json, which the platform reads the model's facts from when
    the API could not reach it; None when it cannot be read here."""
    try:
        with _model_files(plan, "config.json") as folder:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except Exception:  # the platform then fails the job with model_facts_unknown
        return None
    return config if isinstance(config, dict) else None


def _options(plan: TrainerPlan, dataset: PlanDataset) -> ValidationOptions:
    spec = plan.spec
    return ValidationOptions(
        format=spec.dataset.format,
        columns=spec.dataset.columns,
        filename=dataset.filename or dataset.source.rsplit("/", 1)[-1],
        cutoff_length=spec.sequence_length,
        preference=spec.method is Method.DPO,
        max_samples=spec.dataset.max_samples,
        max_file_bytes=dataset.max_file_bytes,
        max_row_bytes=dataset.max_row_bytes,
        max_listed_issues=PREPARED_LISTED_ISSUES,
    )


def _measure(counter: ExactTokenCounter | None) -> Callable[[Normalized], int]:
    if counter is not None:
        return lambda normalized: counter(normalized.rendered)
    return lambda normalized: (
        (len(normalized.rendered.encode()) + BYTES_PER_TOKEN - 1) // (BYTES_PER_TOKEN)
    )


def prepare_dataset(plan: TrainerPlan, emitter: EventEmitter) -> PreparedData:
    """Validate and split the plan's dataset into `plan.data`; write and return what was
    found (`prepared.json` under `plan.job_files`)."""
    if plan.dataset is None or plan.job_files is None:
        raise StorageError("the plan names no dataset or job folder to prepare")
    dataset = plan.dataset
    options = _options(plan, dataset)
    counter = token_counter(plan)
    emitter.log(
        "info",
        "preparing the dataset",
        source=dataset.source,
        tokenizer=counter.name if counter else "estimated (~4 bytes a token)",
    )
    try:
        with open_source(dataset, options.format) as reopen:
            prepared = _split(plan, reopen, options, counter)
    except InvalidInputError as error:
        prepared = PreparedData(valid=False, message=error.message)
    except StorageError as error:
        prepared = PreparedData(valid=False, message=f"the dataset could not be read: {error}")
    prepared = prepared.model_copy(update={"base_model_config": model_config(plan)})
    open_location(plan.job_files).write_bytes(
        JobLayout.prepared, prepared.model_dump_json(indent=2).encode()
    )
    emitter.log("info", "dataset prepared", valid=prepared.valid, splits=prepared.splits)
    return prepared


def _split(
    plan: TrainerPlan, reopen: Opener, options: ValidationOptions, counter: ExactTokenCounter | None
) -> PreparedData:
    seed = plan.spec.advanced.seed
    planner = SplitPlanner(plan.spec.dataset.split, seed)
    with reopen() as raw:
        hashing = _Hashing(raw)
        report = validate_dataset(
            io.BufferedReader(hashing, _CHUNK),
            options,
            token_counter=counter,
            on_example=planner.observe,
        )
    estimated = counter is None
    common: dict[str, Any] = {
        "format": report.format,
        "kind": report.kind,
        "report": report,
        "tokens_estimated": estimated,
        "tokenizer": None if estimated else counter.name,  # type: ignore[union-attr]
        "bytes_read": report.stats.bytes_read,
    }
    if not report.valid:
        first = report.errors[0].message if report.errors else "the dataset is not valid"
        return PreparedData(valid=False, message=first, **common)
    assert report.format is not None and report.kind is not None  # a valid report has both
    data = open_location(plan.data)
    with reopen() as stream, contextlib.ExitStack() as files:
        outputs = {
            name: files.enter_context(data.open_write(split_file(name))) for name in SPLIT_NAMES
        }
        counts = planner.write(iter_examples(stream, options), outputs, _measure(counter))
    manifest = SplitManifest(
        format=report.format,
        kind=report.kind,
        counts=counts,
        sha256=hashing.digest.hexdigest(),
        seed=seed,
        mean_tokens=report.stats.tokens.mean if report.stats.tokens else None,
    )
    data.write_bytes(MANIFEST_NAME, manifest.model_dump_json(indent=2).encode())
    splits = {
        name: SplitSize(examples=counts[name], tokens=planner.tokens[name]) for name in SPLIT_NAMES
    }
    return PreparedData(valid=True, splits=splits, sha256=manifest.sha256, **common)
