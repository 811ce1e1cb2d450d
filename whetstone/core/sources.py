"""Which dataset sources an organization may name: hub ids that are only hub ids, and
S3 objects under the organization's own keys or the buckets an administrator allowed it.

Pure rules; the service applies them with the settings (service/datasets.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from whetstone.core.errors import InvalidInputError
from whetstone.core.layout import INCOMING_ROOT, OrgLayout

HF_PREFIX = "hf://"
S3_PREFIX = "s3://"
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
# owner/name[:config][@split], never a path: no '..', no leading '/', no third segment.
_HF_DATASET = re.compile(
    rf"(?!.*\.\.)(?P<id>{_NAME}/{_NAME})(?::(?P<config>{_NAME}))?(?:@(?P<split>{_NAME}))?",
    re.ASCII,
)


@dataclass(frozen=True)
class HubDataset:
    """A dataset on the Hugging Face hub, by its id."""

    dataset_id: str
    config: str | None
    split: str


def parse_hf_dataset(source: str) -> HubDataset:
    """The hub dataset of hf://<owner>/<name>[:config][@split] (split defaults to train);
    InvalidInputError (code `invalid_source`) for anything else, a path above all."""
    match = _HF_DATASET.fullmatch(source.removeprefix(HF_PREFIX))
    if not source.startswith(HF_PREFIX) or match is None:
        raise InvalidInputError(
            f"{source!r} is not a Hugging Face dataset: use hf://<owner>/<name>[:config][@split] "
            "(letters, digits, '-', '_' and '.'; never a path)",
            code="invalid_source",
        )
    return HubDataset(match["id"], match["config"], match["split"] or "train")


# owner/name[@revision]: a branch, tag or commit, never a path either.
_HF_MODEL = re.compile(rf"(?!.*\.\.)(?P<id>{_NAME}/{_NAME})(?:@(?P<revision>{_NAME}))?", re.ASCII)


@dataclass(frozen=True)
class HubModel:
    """A model repository on the Hugging Face hub, at a revision (None: its default branch)."""

    repo_id: str
    revision: str | None


def parse_hf_model(ref: str) -> HubModel:
    """The hub model of hf://<owner>/<name>[@revision]; InvalidInputError (code
    `invalid_model`) for anything else, a path above all."""
    match = _HF_MODEL.fullmatch(ref.removeprefix(HF_PREFIX))
    if not ref.startswith(HF_PREFIX) or match is None:
        raise InvalidInputError(
            f"{ref!r} is not a Hugging Face model: use hf://<owner>/<name>[@revision] "
            "(letters, digits, '-', '_' and '.'; never a path)",
            code="invalid_model",
        )
    return HubModel(match["id"], match["revision"])


def parse_s3_source(source: str) -> tuple[str, str]:
    """(bucket, key) of s3://bucket/key; InvalidInputError (code `invalid_source`) when it is
    not one, or when its key has an empty, '.' or '..' step."""
    bucket, _, key = source.removeprefix(S3_PREFIX).partition("/")
    steps = key.split("/")
    if not source.startswith(S3_PREFIX) or not bucket or not key or {"", ".", ".."} & set(steps):
        raise InvalidInputError(
            f"{source!r} is not an S3 object: use s3://bucket/key (no empty, '.' or '..' steps)",
            code="invalid_source",
        )
    return bucket, key


def allowed_s3_prefixes(
    org_id: str, artifacts_bucket: str, granted: list[str]
) -> list[tuple[str, str]]:
    """(bucket, key prefix) pairs the organization may read datasets from: its own keys of
    the artifacts bucket, and the `bucket` or `bucket/prefix` entries an administrator
    granted it."""
    pairs = [(artifacts_bucket, prefix) for prefix in OrgLayout(org_id).dataset_prefixes]
    for entry in granted:
        bucket, _, prefix = entry.removeprefix(S3_PREFIX).partition("/")
        prefix = prefix.strip("/")
        pairs.append((bucket, f"{prefix}/" if prefix else ""))
    return pairs


def require_s3_allowed(
    source: str, org_id: str, *, artifacts_bucket: str, granted: list[str]
) -> tuple[str, str]:
    """(bucket, key) of an s3:// source the organization may read; InvalidInputError (code
    `source_not_allowed`) for any other object."""
    bucket, key = parse_s3_source(source)
    pairs = allowed_s3_prefixes(org_id, artifacts_bucket, granted)
    if not any(bucket == allowed and key.startswith(prefix) for allowed, prefix in pairs):
        raise InvalidInputError(
            f"{source} is outside what your organization may read: upload the file, put it "
            f"under s3://{artifacts_bucket}/{INCOMING_ROOT}{org_id}/, or ask an "
            "administrator to allow its bucket (WHETSTONE_ORG_DATASET_BUCKETS)",
            code="source_not_allowed",
        )
    return bucket, key
