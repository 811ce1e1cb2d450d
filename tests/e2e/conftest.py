"""What the end-to-end tests share: the tiny model their trainers fine-tune."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama-architecture model folder, built in a subprocess (this process stays
    free of torch until a test needs it)."""
    folder = tmp_path_factory.mktemp("tiny") / "model"
    subprocess.run([sys.executable, "-m", "whetstone.inference.tiny", str(folder)], check=True)
    return folder
