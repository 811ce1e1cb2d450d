"""`python -m trainer` as the runner starts it: events on stdout, SIGTERM, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from trainer import allocator

from whetstone.core.events import TrainerEvent, TrainerPhase, parse_trainer_event
from whetstone.core.layout import OutputNames
from whetstone.core.trainer_exit import TrainerExit


def _start(plan_file: Path, workdir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(
        [sys.executable, "-m", "trainer", "--spec", str(plan_file), "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def test_unreadable_plan_fails_with_an_error_code(tmp_path: Path) -> None:
    process = _start(tmp_path / "missing.json", tmp_path)
    out, _ = process.communicate(timeout=120)
    events = [parse_trainer_event(line) for line in out.splitlines()]
    assert process.returncode == TrainerExit.FAILED
    assert events[-1].detail.phase is TrainerPhase.FAILED  # type: ignore[union-attr]
    assert events[-1].detail.error_code == "invalid_plan"  # type: ignore[union-attr]


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_a_restart_resumes_to_completion(
    counting_plan: Any, tmp_path: Path
) -> None:
    # Given a job long enough to be interrupted
    plan = counting_plan(options={"max_steps": 30})
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.model_dump_json())

    # When SIGTERM arrives once training has reported step 2
    first = _start(plan_file, tmp_path / "node-1")
    assert first.stdout is not None
    events: list[TrainerEvent] = []
    for line in first.stdout:
        events.append(parse_trainer_event(line))  # every line is a schema-valid event
        detail = events[-1].detail
        if events[-1].detail_type == "metrics" and detail.step >= 2:  # type: ignore[union-attr]
            first.send_signal(signal.SIGTERM)
            break
    events += [parse_trainer_event(line) for line in first.stdout]
    first.wait(timeout=60)

    # Then it saved a checkpoint, said it was interrupted and exited with 143
    checkpoints = [e.detail for e in events if e.detail_type == "checkpoint"]
    statuses = [e.detail.phase for e in events if e.detail_type == "status"]  # type: ignore[union-attr]
    assert first.returncode == TrainerExit.INTERRUPTED
    assert statuses[:2] == [TrainerPhase.LOADING, TrainerPhase.TRAINING]
    assert statuses[-1] is TrainerPhase.INTERRUPTED and len(checkpoints) == 1
    logs = [e.detail.message for e in events if e.detail_type == "log"]  # type: ignore[union-attr]
    if allocator.on_glibc():  # the stage relaunched itself with the allocator's tunables
        assert any("keeps each step's memory" in message for message in logs)
    saved_step = checkpoints[0].step  # type: ignore[union-attr]
    assert 2 <= saved_step < 30

    # When the job starts again on another node with the same output
    second = _start(plan_file, tmp_path / "node-2")
    out, _ = second.communicate(timeout=300)
    resumed = [parse_trainer_event(line) for line in out.splitlines()]

    # Then it continues after the checkpoint and completes
    steps = [e.detail.step for e in resumed if e.detail_type == "metrics"]  # type: ignore[union-attr]
    assert second.returncode == TrainerExit.DONE
    assert steps[0] == saved_step + 1 and steps[-1] == 30
    assert resumed[-1].detail.phase is TrainerPhase.DONE  # type: ignore[union-attr]
    assert (tmp_path / "out" / OutputNames.MODEL / "adapter_model.safetensors").exists()
    assert (tmp_path / "out" / OutputNames.RUN_MANIFEST).exists()
