"""Dataset use cases: validate a dataset from any source; validate, split and store it.

Sources: uploaded bytes, s3://bucket/key, hf://<owner>/<name>[:config][@split], and
(local runtime) a path inside the configured dataset roots; each read only where the
caller's organization may read (`check_source`, rules in core/sources.py). Remote sources are
copied once to a local temporary file (the split reads the data twice and the
manifest records its SHA-256), never held in memory.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

from pydantic import Field

from whetstone.core.datasets.hub import load_hf, parse_hf_source
from whetstone.core.datasets.options import ColumnMapping, ValidationOptions
from whetstone.core.datasets.records import (
    MANIFEST_NAME,
    SPLIT_NAMES,
    SplitManifest,
    split_file,
)
from whetstone.core.datasets.report import ValidationReport
from whetstone.core.datasets.splitter import SplitPlanner
from whetstone.core.datasets.tokens import ExactTokenCounter
from whetstone.core.datasets.validator import validate_dataset
from whetstone.core.datasets.walk import iter_examples
from whetstone.core.deferred import DeferredModel
from whetstone.core.errors import InvalidInputError
from whetstone.core.sources import (
    HF_PREFIX,
    S3_PREFIX,
    parse_hf_dataset,
    parse_s3_source,
    require_s3_allowed,
)
from whetstone.core.spec import DatasetFormat, Method
from whetstone.core.spec_dataset import DatasetParams
from whetstone.ports import BlobStore
from whetstone.service.hub_cache import HubRepo, require_cached
from whetstone.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

_CHUNK = 1024 * 1024


class DatasetCheck(DeferredModel):
    """What to check a dataset against; the job spec's dataset settings map onto it."""

    format: Annotated[DatasetFormat, Field(description="Dataset format; 'auto' detects it.")] = (
        DatasetFormat.AUTO
    )
    columns: Annotated[
        ColumnMapping, Field(description="Column mapping for CSV, Parquet and generic JSONL.")
    ] = Field(default_factory=ColumnMapping)
    cutoff_length: Annotated[
        int, Field(ge=1, le=131072, description="Tokens past which an example is truncated.")
    ] = 2048
    preference: Annotated[
        bool | None,
        Field(description="True: the data must be preference pairs (dpo); False: must not be."),
    ] = None
    max_samples: Annotated[
        int | None, Field(ge=1, description="Check only the first N valid examples.")
    ] = None


@dataclass(frozen=True)
class LocalCopy:
    """A dataset as a local file the readers can open (and seek) as often as needed."""

    path: Path
    filename: str
    sha256: str


@dataclass(frozen=True)
class PreparedDataset:
    manifest: SplitManifest
    report: ValidationReport
    prefix: str


def _options(check: DatasetCheck, filename: str | None, settings: Settings) -> ValidationOptions:
    return ValidationOptions(
        format=check.format,
        columns=check.columns,
        filename=filename,
        cutoff_length=check.cutoff_length,
        preference=check.preference,
        max_samples=check.max_samples,
        max_file_bytes=settings.max_upload_bytes,
        max_row_bytes=settings.max_row_bytes,
    )


def check_from_params(
    params: DatasetParams, cutoff_length: int, *, method: Method | None = None
) -> DatasetCheck:
    """The check a job's dataset settings call for; with the job's `method`, the data must
    suit it (preference pairs for dpo only)."""
    return DatasetCheck(
        format=params.format,
        columns=params.columns,
        cutoff_length=cutoff_length,
        preference=None if method is None else method is Method.DPO,
        max_samples=params.max_samples,
    )


# -- sources ----------------------------------------------------------------------------


def resolve_local_path(raw: str, roots: list[Path]) -> Path:
    """The real path of a local dataset, which must lie inside one of `roots`.

    Symlinks are resolved first, so a link pointing out of the roots is refused
    just like a path with '..' in it.
    """
    path = Path(raw.removeprefix("file://")).expanduser()
    if not roots:
        raise InvalidInputError(
            "local dataset paths are disabled: no dataset roots are configured; set "
            "WHETSTONE_DATASET_ROOTS to the folders that hold your datasets",
            code="path_not_allowed",
        )
    resolved_roots = [root.expanduser().resolve() for root in roots]
    if not path.is_absolute():
        path = resolved_roots[0] / path
    resolved = path.resolve()
    if not any(resolved.is_relative_to(root) for root in resolved_roots):
        where = ", ".join(str(root) for root in resolved_roots)
        raise InvalidInputError(
            f"{raw} resolves to {resolved}, which is outside the dataset roots ({where}); "
            "move the file under one of them, or add its folder to WHETSTONE_DATASET_ROOTS",
            code="path_not_allowed",
        )
    if not resolved.is_file():
        raise InvalidInputError(
            f"no dataset file at {resolved}; check the path", code="dataset_missing"
        )
    return resolved


def _copy_limited(stream: IO[bytes], out: IO[bytes], limit: int, what: str) -> str:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise InvalidInputError(
                f"{what} is larger than the {limit / 1024**2:.0f} MiB limit; split it or use a "
                "smaller extract",
                code="file_too_large",
            )
        digest.update(chunk)
        out.write(chunk)
    return digest.hexdigest()


def _sha256_of(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


@contextmanager
def local_copy(
    source: str,
    settings: Settings,
    *,
    org_id: str,
    s3_client: S3Client | None = None,
) -> Iterator[LocalCopy]:
    """The dataset at `source` as a local file, removed afterwards (unless it was local).
    Only a source organization `org_id` may read (`check_source`) is read."""
    check_source(source, settings, org_id=org_id)
    if source.startswith(S3_PREFIX):
        from whetstone.adapters.aws.s3_blobs import S3BlobStore

        bucket, key = parse_s3_source(source)
        store = S3BlobStore(bucket, client=s3_client)
        with tempfile.TemporaryDirectory(prefix="whetstone-dataset-") as tmp:
            path = Path(tmp) / "data"
            with store.open(key) as stream, path.open("wb") as out:
                sha = _copy_limited(stream, out, settings.max_upload_bytes, source)
            yield LocalCopy(path, key.rsplit("/", 1)[-1], sha)
        return
    if source.startswith(HF_PREFIX):
        with tempfile.TemporaryDirectory(prefix="whetstone-dataset-") as tmp:
            path = Path(tmp) / "data.jsonl"
            with path.open("wb") as out:
                load_hf(source, out, settings.max_upload_bytes)
            yield LocalCopy(path, path.name, _sha256_of(path))
        return
    path = local_source_path(source, settings)
    yield LocalCopy(path, path.name, _sha256_of(path))


def local_source_path(source: str, settings: Settings) -> Path:
    if settings.runtime != "local":
        raise InvalidInputError(
            f"{source!r} is not a dataset source here: use s3://bucket/key or "
            "hf://<owner>/<name>[:config][@split], or upload the file",
            code="invalid_source",
        )
    return resolve_local_path(source, settings.dataset_roots or [settings.home / "datasets"])


def check_source(source: str, settings: Settings, *, org_id: str) -> None:
    """Refuse, without reading it, a source organization `org_id` may not read or that
    cannot be read here: in aws an s3:// object outside its own keys and the buckets
    granted it (`org_dataset_buckets`); an hf:// that is not a hub id, or (local runtime)
    one the hub cannot serve offline; a local path outside the dataset roots or missing.
    Every entry point calls it with the caller's organization; `local_copy` calls it too."""
    if source.startswith(S3_PREFIX):
        if settings.runtime == "aws":
            require_s3_allowed(
                source,
                org_id,
                artifacts_bucket=settings.bucket,
                granted=settings.org_dataset_buckets.get(org_id, []),
            )
        else:  # read with the local user's own credentials
            parse_s3_source(source)
        return
    if source.startswith(HF_PREFIX):
        hub = parse_hf_dataset(source)
        if settings.runtime == "local":  # elsewhere the preparing step reaches the hub
            require_cached(HubRepo("dataset", hub.dataset_id), source)
        return
    local_source_path(source, settings)


@contextmanager
def upload_copy(data: bytes, filename: str | None) -> Iterator[LocalCopy]:
    """Uploaded bytes as a local file."""
    with tempfile.TemporaryDirectory(prefix="whetstone-upload-") as tmp:
        path = Path(tmp) / "data"
        path.write_bytes(data)
        yield LocalCopy(path, filename or "upload", hashlib.sha256(data).hexdigest())


# -- use cases --------------------------------------------------------------------------


def validate_bytes(
    data: bytes,
    filename: str | None,
    check: DatasetCheck,
    settings: Settings,
    *,
    token_counter: ExactTokenCounter | None = None,
) -> ValidationReport:
    """The validation report of an uploaded file."""
    options = _options(check, filename, settings)
    return validate_dataset(io.BytesIO(data), options, token_counter=token_counter)


def validate_source(
    source: str,
    check: DatasetCheck,
    settings: Settings,
    *,
    org_id: str,
    s3_client: S3Client | None = None,
    token_counter: ExactTokenCounter | None = None,
) -> ValidationReport:
    """The validation report of the dataset at an s3://, hf:// or local source that
    organization `org_id` may read."""
    local = local_copy(source, settings, org_id=org_id, s3_client=s3_client)
    with local as copy, copy.path.open("rb") as f:
        return validate_dataset(
            f, _options(check, copy.filename, settings), token_counter=token_counter
        )


def require_valid_dataset(
    stream: IO[bytes], check: DatasetCheck, filename: str | None, settings: Settings
) -> ValidationReport:
    """The validation report of a dataset that must be valid: InvalidInputError (code
    `dataset_invalid`, details = the report) when it has errors."""
    report = validate_dataset(stream, _options(check, filename, settings))
    if not report.valid:
        raise _invalid(report)
    return report


def _invalid(report: ValidationReport) -> InvalidInputError:
    first = report.errors[0]
    where = f" (line {first.line})" if first.line else f" (row {first.row})" if first.row else ""
    count = sum(report.stats.error_counts.values())
    return InvalidInputError(
        f"the dataset has {count} error(s); the first{where}: {first.message}",
        code="dataset_invalid",
        details=report.model_dump(mode="json"),
    )


def split_local_copy(
    copy: LocalCopy,
    params: DatasetParams,
    check: DatasetCheck,
    *,
    seed: int,
    blobs: BlobStore,
    prefix: str,
    settings: Settings,
    token_counter: ExactTokenCounter | None = None,
) -> PreparedDataset:
    """Validate a local copy, then write its split files and manifest under `prefix`."""
    options = _options(check, copy.filename, settings)
    planner = SplitPlanner(params.split, seed)
    with copy.path.open("rb") as stream:
        report = validate_dataset(
            stream, options, token_counter=token_counter, on_example=planner.observe
        )
    if not report.valid:
        raise _invalid(report)
    assert report.format is not None and report.kind is not None  # a valid report has both
    with tempfile.TemporaryDirectory(prefix="whetstone-split-") as tmp:
        paths = {name: Path(tmp) / split_file(name) for name in SPLIT_NAMES}
        outputs: dict[str, Any] = {name: path.open("wb") for name, path in paths.items()}
        try:
            with copy.path.open("rb") as stream:
                counts = planner.write(iter_examples(stream, options), outputs)
        finally:
            for out in outputs.values():
                out.close()
        manifest = SplitManifest(
            format=report.format,
            kind=report.kind,
            counts=counts,
            sha256=copy.sha256,
            seed=seed,
            mean_tokens=report.stats.tokens.mean if report.stats.tokens else None,
        )
        for name, path in paths.items():
            with path.open("rb") as data:
                blobs.put(prefix + split_file(name), data)
    blobs.put(f"{prefix}{MANIFEST_NAME}", manifest.model_dump_json(indent=2).encode())
    return PreparedDataset(manifest=manifest, report=report, prefix=prefix)


def prepare_splits(
    source: str | bytes,
    params: DatasetParams,
    *,
    cutoff_length: int,
    seed: int,
    blobs: BlobStore,
    prefix: str,
    settings: Settings,
    org_id: str,
    filename: str | None = None,
    s3_client: S3Client | None = None,
    token_counter: ExactTokenCounter | None = None,
    method: Method | None = None,
) -> PreparedDataset:
    """Validate the dataset, split it (seeded, after max_samples) and store the split files.

    Writes `<prefix>train.jsonl`, `validation.jsonl`, `test.jsonl` (one normalized
    `Example` per line) and `manifest.json`. Raises InvalidInputError (code
    `dataset_invalid`, details = the report) when the data has errors. A source is read
    only if organization `org_id` may read it.
    """
    check = check_from_params(params, cutoff_length, method=method)
    if isinstance(source, bytes):
        context = upload_copy(source, filename)
    else:
        context = local_copy(source, settings, org_id=org_id, s3_client=s3_client)
    with context as copy:
        if filename is not None and not isinstance(source, bytes):
            copy = LocalCopy(copy.path, filename, copy.sha256)
        return split_local_copy(
            copy,
            params,
            check,
            seed=seed,
            blobs=blobs,
            prefix=prefix,
            settings=settings,
            token_counter=token_counter,
        )


__all__ = [
    "DatasetCheck",
    "LocalCopy",
    "PreparedDataset",
    "check_from_params",
    "check_source",
    "local_copy",
    "parse_hf_source",
    "prepare_splits",
    "resolve_local_path",
    "validate_bytes",
    "validate_source",
]
