"""Resolving what a job names as its base model into the facts the estimates need."""

from __future__ import annotations

import json
from pathlib import Path

from whetstone.core.catalog.base_models import BASE_MODELS, BASE_MODELS_BY_ID
from whetstone.core.catalog.model_facts import BaseModelInfo
from whetstone.core.catalog.resolve import facts_from_hf_config
from whetstone.core.errors import InvalidInputError, NotFoundError
from whetstone.service.hub_cache import HubRepo, require_cached

HF_PREFIX = "hf://"
S3_PREFIX = "s3://"


def is_local_path(ref: str) -> bool:
    return ref.startswith(("/", "./", "../", "~"))


def resolve_base_model(ref: str, *, allow_local_paths: bool) -> BaseModelInfo:
    """The catalog entry, or the facts read from a local folder's config.json.

    `ref` is a catalog id, `hf://<repo>`, `s3://...` or (local runtime) a folder path.
    """
    if ref in BASE_MODELS_BY_ID:
        return BASE_MODELS_BY_ID[ref]
    if ref.startswith(HF_PREFIX):
        repo = ref.removeprefix(HF_PREFIX).lower()
        for model in BASE_MODELS:
            if model.hf_repo.lower() == repo:
                return model
        raise InvalidInputError(
            f"{ref} is not in the catalog, and its architecture cannot be read without the "
            "hub; name a catalog model (GET /api/v1/fine-tuning/base-models) or a local folder "
            "holding the model's config.json",
            code="model_facts_unknown",
        )
    if ref.startswith(S3_PREFIX):
        raise InvalidInputError(
            f"estimates for {ref} need the model's architecture; name the catalog model it "
            "was derived from, or a local folder holding its config.json",
            code="model_facts_unknown",
        )
    if is_local_path(ref):
        if not allow_local_paths:
            raise InvalidInputError(
                "local model paths work only with the local runtime; upload the model to "
                "s3:// or name a catalog model",
                code="local_path_not_allowed",
            )
        return _from_local_folder(Path(ref).expanduser())
    raise NotFoundError(
        f"no base model {ref!r}: use a catalog id from GET /api/v1/fine-tuning/base-models, "
        "hf://<repo>, s3://<bucket>/<prefix> or a local folder path",
        code="model_not_found",
    )


def require_reachable_model(ref: str, model: BaseModelInfo) -> None:
    """Refuse a hub model (a catalog id or hf://) that the hub cannot serve here: offline and
    not in the local cache. Call it where the trainer runs in this environment."""
    if ref in BASE_MODELS_BY_ID or ref.startswith(HF_PREFIX):
        require_cached(HubRepo("model", model.hf_repo), ref)


def _from_local_folder(folder: Path) -> BaseModelInfo:
    if not folder.is_dir():
        raise NotFoundError(
            f"no folder {folder} on the platform's machine; point at a folder saved with "
            "save_pretrained",
            code="model_not_found",
        )
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise InvalidInputError(
            f"{folder} holds no config.json; point at a folder saved with save_pretrained",
            code="model_config_missing",
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError("config.json must hold a JSON object")
        return facts_from_hf_config(config, model_id=str(folder), name=folder.name)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInputError(
            f"cannot read the model facts from {config_path}: {error}", code="model_config_invalid"
        ) from error
