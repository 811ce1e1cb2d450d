"""`whet validate` says which columns it read the examples from."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from support.clients import Result

pytestmark = pytest.mark.usefixtures("no_user_config")


def test_validate_prints_the_columns_it_recognised(
    whet: Callable[..., Result], tmp_path: Path
) -> None:
    # Given a dataset of question/answer records and no mapping
    path = tmp_path / "qa.jsonl"
    rows = [{"question": f"what is {i}?", "answer": f"it is {i}"} for i in range(120)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    # When it is validated
    result = whet("validate", str(path))
    # Then the output names the mapping applied
    assert result.code == 0
    assert "prompt=question, completion=answer" in result.out
