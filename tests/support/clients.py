"""What the SDK and `whet` tests share: a run of `whet`, a dataset file, a job moved along
as its workflow would move it, and polls that run those moves instead of sleeping."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from whetstone.cli.main import main
from whetstone.client import Job
from whetstone.core.job import JobRecord
from whetstone.core.lifecycle import JobStatus
from whetstone.runtime import get_platform
from whetstone.service.records import transition, update_job


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


def report_step(job_id: str, step: int, max_steps: int, loss: float) -> None:
    """The trainer's report of `step`: progress, the loss, 90 s to go and $0.25 spent."""

    def change(job: JobRecord) -> JobRecord:
        progress = job.progress.model_copy(
            update={
                "step": step,
                "max_steps": max_steps,
                "fraction": step / max_steps,
                "eta_seconds": 90.0,
            }
        )
        cost = job.cost.model_copy(update={"current_usd": 0.25})
        return job.model_copy(
            update={"progress": progress, "latest_metrics": {"loss": loss}, "cost": cost}
        )

    update_job(get_platform(), job_id, change)


def stepping(steps: list[Callable[[], None]]) -> Callable[[Job, float], None]:
    """A `Job.wait_between_polls` that runs the next simulated event instead of sleeping."""
    pending = list(steps)

    def pause(self: Job, seconds: float) -> None:
        pending.pop(0)()

    return pause
