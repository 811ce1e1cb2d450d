"""The Hugging Face hub as the trainer's pods see it: an offline cache that holds a tiny
model under a catalog model's repository name."""

from __future__ import annotations

import shutil
from pathlib import Path

from whetstone.core.catalog.base_models import BASE_MODELS_BY_ID

REVISION = "0" * 40


def hub_cache(folder: Path, model_id: str, model: Path) -> Path:
    """`folder` as a hub cache (HF_HUB_CACHE) in which the catalog model `model_id` is the
    model folder `model`, at revision main."""
    repo = BASE_MODELS_BY_ID[model_id].hf_repo
    cached = folder / f"models--{repo.replace('/', '--')}"
    (cached / "refs").mkdir(parents=True, exist_ok=True)
    (cached / "refs" / "main").write_text(REVISION)
    shutil.copytree(model, cached / "snapshots" / REVISION, dirs_exist_ok=True)
    return folder
