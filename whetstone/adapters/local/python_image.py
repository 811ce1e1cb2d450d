"""The local runtime's trainer "image": the Python environment `whet serve` runs in.

Nothing is built; "building" checks once per server that this environment can
run the trainer (its package and torch are importable), so a broken install
fails a job at the build step with a message rather than in the trainer.
"""

from __future__ import annotations

import importlib.util
import sys

REQUIRED_MODULES = ("trainer", "torch", "transformers", "peft")


class CurrentPythonImage:
    def __init__(self) -> None:
        self._verified = False

    def find(self, tag: str) -> str | None:
        return sys.executable if self._verified else None

    def build(self, tag: str) -> str:
        missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
        if missing:
            raise RuntimeError(
                f"this Python environment lacks {', '.join(missing)}; install the trainer "
                "extras (make venv, or pip install -e '.[trainer]')"
            )
        self._verified = True
        return sys.executable
