"""Whether the Hugging Face hub can serve a repository here: online always, offline
(HF_HUB_OFFLINE) only from the local cache. Read from the cache layout, so the API side
needs no hub client."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from whetstone.core.errors import InvalidInputError

_TRUE = {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class HubRepo:
    kind: Literal["model", "dataset"]
    repo_id: str


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


def _hf_home() -> Path:
    if home := os.environ.get("HF_HOME"):
        return Path(home).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "huggingface"


def cache_folders(repo: HubRepo) -> list[Path]:
    """Where a cached copy of `repo` would lie: the hub's snapshots, and for datasets the
    `datasets` library's own cache."""
    hub = os.environ.get("HF_HUB_CACHE") or str(_hf_home() / "hub")
    folders = [Path(hub).expanduser() / f"{repo.kind}s--{repo.repo_id.replace('/', '--')}"]
    if repo.kind == "dataset":
        datasets = os.environ.get("HF_DATASETS_CACHE") or str(_hf_home() / "datasets")
        folders.append(Path(datasets).expanduser() / repo.repo_id.replace("/", "___"))
    return folders


def require_cached(repo: HubRepo, ref: str) -> None:
    """Refuse (InvalidInputError, code `hf_unavailable`) a repository the hub cannot serve:
    offline and not in the local cache."""
    folders = cache_folders(repo)
    if not hub_offline() or any(folder.is_dir() for folder in folders):
        return
    instead = (
        "upload the file or put it on S3"
        if repo.kind == "dataset"
        else "name a local folder holding the model"
    )
    raise InvalidInputError(
        f"{ref} cannot be reached: the hub is offline (HF_HUB_OFFLINE) and {repo.kind} "
        f"{repo.repo_id} is not in the local cache ({folders[0]}); download it once with "
        f"network access, or {instead}",
        code="hf_unavailable",
    )
