"""What the SDK and `whet` tests share: a run of `whet`, a dataset file, and a job moved
along as its workflow would move it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from whetstone.cli.main import main
from whetstone.core.lifecycle import JobStatus
from whetstone.runtime import get_platform
from whetstone.service.jobs import transition


@dataclass
class Result:
    """What one `whet` run left: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def whet_runner(server_url: str, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run `whet <args> --url <server>` in this process; its exit code and output."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main([*args, "--url", server_url])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def write_dataset(path: Path, count: int = 120, padding: int = 0) -> Path:
    """An alpaca JSONL file of `count` valid examples, each `padding` characters longer."""
    rows = [
        {"instruction": f"Reverse word {i}", "input": f"w{i}" + "x" * padding, "output": f"{i}w"}
        for i in range(count)
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows))
    return path


def start_training(job_id: str) -> None:
    for status in (JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING):
        transition(get_platform(), job_id, status)
