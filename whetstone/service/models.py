"""Resolving what a job names as its base model into the facts the estimates need."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whetstone.core.catalog.base_models import BASE_MODELS, BASE_MODELS_BY_ID
from whetstone.core.catalog.model_facts import BaseModelInfo
from whetstone.core.catalog.resolve import facts_from_hf_config
from whetstone.core.errors import InvalidInputError, NotFoundError
from whetstone.core.sources import HF_PREFIX, S3_PREFIX, parse_hf_model
from whetstone.service.hub_cache import HubRepo, require_cached
from whetstone.service.model_configs import (
    hub_model_config,
    parse_model_config,
    s3_model_config,
)
from whetstone.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


def is_local_path(ref: str) -> bool:
    return ref.startswith(("/", "./", "../", "~"))


def resolve_base_model(
    ref: str, *, allow_local_paths: bool, config: Mapping[str, Any] | None = None
) -> BaseModelInfo:
    """The catalog entry, or the facts read from a model's config.json: a local folder's,
    or `config` (read by `find_base_model`) for a hub or S3 model outside the catalog.

    `ref` is a catalog id, `hf://<repo>[@revision]`, `s3://...` or (local runtime) a folder path.
    """
    if ref in BASE_MODELS_BY_ID:
        return BASE_MODELS_BY_ID[ref]
    if ref.startswith(HF_PREFIX):
        hub = parse_hf_model(ref)
        for model in BASE_MODELS:
            if model.hf_repo.lower() == hub.repo_id.lower():
                return model
        if config is None:
            raise InvalidInputError(
                f"{ref} is not in the catalog, and its config.json could not be read here "
                "(the hub is offline or did not answer); name a catalog model "
                "(GET /api/v1/fine-tuning/base-models) or a folder holding its config.json",
                code="model_facts_unknown",
            )
        return _from_config(config, ref, name=hub.repo_id.rsplit("/", 1)[-1], hf_repo=hub.repo_id)
    if ref.startswith(S3_PREFIX):
        if config is None:
            raise InvalidInputError(
                f"estimates for {ref} need its config.json, which was not read",
                code="model_facts_unknown",
            )
        return _from_config(config, ref, name=ref.rstrip("/").rsplit("/", 1)[-1])
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


def find_base_model(
    ref: str, settings: Settings, *, org_id: str, s3_client: S3Client | None = None
) -> BaseModelInfo | None:
    """The model's facts, reading a hub or S3 model's config.json where this process can
    reach it; None when a hub model's config cannot be read here (the prepare stage, which
    downloads the model, reads it and checks the fit then)."""
    local = settings.runtime == "local"
    if ref in BASE_MODELS_BY_ID or not ref.startswith((HF_PREFIX, S3_PREFIX)):
        return resolve_base_model(ref, allow_local_paths=local)
    if ref.startswith(S3_PREFIX):
        s3_config = s3_model_config(ref, settings, org_id=org_id, s3_client=s3_client)
        return resolve_base_model(ref, allow_local_paths=local, config=s3_config)
    hub = parse_hf_model(ref)
    if any(model.hf_repo.lower() == hub.repo_id.lower() for model in BASE_MODELS):
        return resolve_base_model(ref, allow_local_paths=local)
    hub_config = hub_model_config(hub)
    if hub_config is None:
        return None
    return resolve_base_model(ref, allow_local_paths=local, config=hub_config)


def require_reachable_model(ref: str) -> None:
    """Refuse a hub model (a catalog id or hf://) that the hub cannot serve here: offline and
    not in the local cache. Call it where the trainer runs in this environment."""
    if ref in BASE_MODELS_BY_ID:
        require_cached(HubRepo("model", BASE_MODELS_BY_ID[ref].hf_repo), ref)
    elif ref.startswith(HF_PREFIX):
        require_cached(HubRepo("model", parse_hf_model(ref).repo_id), ref)


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
    config = parse_model_config(config_path.read_bytes(), str(folder))
    return _from_config(config, str(folder), name=folder.name)


def _from_config(
    config: Mapping[str, Any], ref: str, *, name: str, hf_repo: str | None = None
) -> BaseModelInfo:
    """The facts of a model config; InvalidInputError when it lacks what the estimates need."""
    try:
        return facts_from_hf_config(config, model_id=ref, name=name, hf_repo=hf_repo)
    except ValueError as error:
        raise InvalidInputError(
            f"cannot read the model facts from the config.json of {ref}: {error}",
            code="model_config_invalid",
        ) from error
