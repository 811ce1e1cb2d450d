"""A base model's config.json, read where this process can reach it: the local hub cache,
the hub's file endpoint (when the hub is online), or an S3 prefix the organization may read.

The estimates need a model's architecture before it is downloaded; its config.json (a few
KiB) holds it. Read with the standard library, so the API Lambda needs no hub client.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whetstone.core.errors import InvalidInputError, NotFoundError
from whetstone.core.sources import HubModel, parse_s3_source, require_s3_allowed
from whetstone.service.hub_cache import HubRepo, cache_folders, hub_offline
from whetstone.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

CONFIG_NAME = "config.json"
MAX_CONFIG_BYTES = 1 << 20  # real configs are a few KiB; anything larger is not one
# The API answers within API Gateway's 29 s: a slow hub defers the read to the prepare stage.
HUB_TIMEOUT_S = 5.0
_DEFAULT_ENDPOINT = "https://huggingface.co"


def hub_model_config(model: HubModel) -> dict[str, Any] | None:
    """The config.json of a hub model, from the local cache or else (hub online) its file
    endpoint; None when neither answers here. NotFoundError when the hub says the repository
    or revision does not exist."""
    cached = _cached_config(model)
    if cached is not None:
        return parse_model_config(cached.read_bytes(), f"hf://{model.repo_id}")
    if hub_offline():
        return None
    endpoint = os.environ.get("HF_ENDPOINT") or _DEFAULT_ENDPOINT
    revision = urllib.parse.quote(model.revision or "main", safe="")
    url = f"{endpoint.rstrip('/')}/{model.repo_id}/resolve/{revision}/{CONFIG_NAME}"
    request = urllib.request.Request(url)
    if token := os.environ.get("HF_TOKEN"):
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=HUB_TIMEOUT_S) as response:
            data = response.read(MAX_CONFIG_BYTES + 1)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            at = f" at revision {model.revision}" if model.revision else ""
            raise NotFoundError(
                f"the hub has no model hf://{model.repo_id}{at} (or no {CONFIG_NAME} in it)",
                code="model_not_found",
            ) from error
        return None  # gated (401/403) or the hub failing: the prepare stage tries with its token
    except (urllib.error.URLError, TimeoutError, OSError):
        return None
    return parse_model_config(data, f"hf://{model.repo_id}")


def s3_model_config(
    ref: str, settings: Settings, *, org_id: str, s3_client: S3Client | None = None
) -> dict[str, Any]:
    """The config.json under an s3://bucket/prefix model the organization may read (in aws:
    its own keys or buckets granted it, as for datasets)."""
    from whetstone.adapters.aws.s3_blobs import S3BlobStore

    location = f"{ref.rstrip('/')}/{CONFIG_NAME}"
    if settings.runtime == "aws":
        bucket, key = require_s3_allowed(
            location,
            org_id,
            artifacts_bucket=settings.bucket,
            granted=settings.org_dataset_buckets.get(org_id, []),
        )
    else:  # read with the local user's own credentials
        bucket, key = parse_s3_source(location)
    try:
        with S3BlobStore(bucket, client=s3_client).open(key) as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except NotFoundError as error:
        raise InvalidInputError(
            f"{ref} holds no {CONFIG_NAME}; upload the folder saved with save_pretrained",
            code="model_config_missing",
        ) from error
    return parse_model_config(data, ref)


def _cached_config(model: HubModel) -> Path | None:
    """config.json in the hub cache's snapshot of the revision (a commit, or the commit a
    branch or tag points at)."""
    (folder,) = cache_folders(HubRepo("model", model.repo_id))
    revision = model.revision or "main"
    ref_file = folder / "refs" / revision
    commit = ref_file.read_text().strip() if ref_file.is_file() else revision
    candidate = folder / "snapshots" / commit / CONFIG_NAME
    return candidate if candidate.is_file() else None


def parse_model_config(data: bytes, ref: str) -> dict[str, Any]:
    """A config.json's bytes as the JSON object it must be; InvalidInputError (code
    `model_config_invalid`) otherwise."""
    if len(data) > MAX_CONFIG_BYTES:
        raise InvalidInputError(
            f"the {CONFIG_NAME} of {ref} is over {MAX_CONFIG_BYTES} bytes; it is not a "
            "model config",
            code="model_config_invalid",
        )
    try:
        config = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInputError(
            f"cannot read the {CONFIG_NAME} of {ref}: {error}", code="model_config_invalid"
        ) from error
    if not isinstance(config, dict):
        raise InvalidInputError(
            f"the {CONFIG_NAME} of {ref} must hold a JSON object", code="model_config_invalid"
        )
    return config
