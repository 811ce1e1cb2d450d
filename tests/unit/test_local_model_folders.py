"""A local base model folder that is missing is reported as missing, not as lacking a config."""

from __future__ import annotations

from pathlib import Path

import pytest

from whetstone.core.errors import InvalidInputError, NotFoundError
from whetstone.service.models import resolve_base_model


def test_a_folder_that_does_not_exist_is_reported_missing(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        resolve_base_model(str(tmp_path / "nowhere"), allow_local_paths=True)

    assert "no folder" in caught.value.message and "config.json" not in caught.value.message


def test_a_folder_without_config_json_says_so(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as caught:
        resolve_base_model(str(tmp_path), allow_local_paths=True)

    assert caught.value.code == "model_config_missing"
