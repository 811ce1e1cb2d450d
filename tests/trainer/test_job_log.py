"""What a job's log holds from the trainer: our own calls raise no deprecation warning, and
library noise a user cannot act on stays at debug level."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from whetstone.core.events import LogDetail, parse_trainer_event
from whetstone.core.trainer_exit import TrainerExit


def test_a_tiny_training_logs_no_deprecation_warning_above_debug(
    counting_plan: Any, tmp_path: Path
) -> None:
    # Given a short LoRA run with activation checkpointing, as the runner starts it
    plan = counting_plan(advanced={"gradient_checkpointing": True})
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.model_dump_json())
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [
        sys.executable,
        "-m",
        "trainer",
        "--spec",
        str(plan_file),
        "--workdir",
        str(tmp_path),
    ]
    # When it trains to the end
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    # Then neither a log event above debug nor a line of stderr (the local runtime logs each
    # as a warning) carries a deprecation warning
    events = [parse_trainer_event(line) for line in done.stdout.splitlines()]
    logged = [
        f"{e.detail.level}: {e.detail.message}"
        for e in events
        if isinstance(e.detail, LogDetail) and e.detail.level != "debug"
    ]
    assert done.returncode == TrainerExit.DONE
    for line in [*logged, *done.stderr.splitlines()]:
        assert "Warning" not in line and "deprecated" not in line.lower(), line


class _Emitter:
    def __init__(self) -> None:
        self.logged: list[tuple[str, str]] = []

    def log(self, level: str, message: str, **fields: Any) -> None:
        self.logged.append((level, message))


def test_a_library_deprecation_stays_a_warning_unless_it_is_known_noise() -> None:
    from trainer.job_log import EventLogHandler

    # Given the handler library records go through
    emitter = _Emitter()
    handler = EventLogHandler(emitter)
    said = {
        "new": "x.py:1: FutureWarning: `foo` is deprecated and will be removed in v6.\n  warn()",
        "noise": "y.py:2: FutureWarning: `is_gradient_checkpointing` is deprecated and ...",
    }
    # When a new deprecation and a known noisy one are warned
    for message in said.values():
        handler.emit(logging.LogRecord("py.warnings", logging.WARNING, "", 0, message, None, None))
    # Then the new one is a warning (its first line), the noisy one debug
    assert emitter.logged == [("warning", said["new"].splitlines()[0]), ("debug", said["noise"])]
