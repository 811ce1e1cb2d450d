"""Test-wide safety: no hub downloads, no state outside temporary folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "whetstone-tests")
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parents[1]))  # functions/, the Lambda entry points

pytest_plugins = ["support.aws_fixtures"]


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    from whetstone.runtime import get_platform
    from whetstone.settings import get_settings

    home = tmp_path_factory.mktemp("whetstone-home")
    monkeypatch.setenv("WHETSTONE_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    get_settings.cache_clear()
    get_platform.cache_clear()
    return home


@pytest.fixture(autouse=True)
def _catalog_models_cached(_isolated_home: Path) -> None:
    """Every catalog model counts as in the (offline) hub cache, as on a prepared machine;
    a test of an uncached model removes its folder."""
    from whetstone.core.catalog.base_models import BASE_MODELS
    from whetstone.service.hub_cache import HubRepo, cache_folders

    for model in BASE_MODELS:
        cache_folders(HubRepo("model", model.hf_repo))[0].mkdir(parents=True)
