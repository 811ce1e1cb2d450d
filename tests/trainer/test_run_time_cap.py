"""The trainer's run-time cap (hardware.max_run_hours): a checkpoint, then run_time_exceeded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from whetstone.core.events import TrainerErrorCode
from whetstone.core.layout import CHECKPOINT_COMPLETE_MARKER, OutputNames


class HourPerLook:
    """A clock that moves an hour each time it is read: no test waits on real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 3600.0
        return self.now


def test_a_run_that_reaches_its_cap_saves_a_checkpoint_and_fails_with_run_time_exceeded(
    counting_plan: Any, run_job: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a plan capped at 2 hours of training, on a clock that moves an hour per look
    from trainer import callbacks
    from trainer.__main__ import classify_error

    monkeypatch.setattr(callbacks, "training_clock", HourPerLook())
    plan = counting_plan(options={"max_steps": 8, "max_run_hours": 2})

    # When it trains
    with pytest.raises(callbacks.RunTimeExceeded) as raised:
        run_job(plan, tmp_path / "work")

    # Then it stopped at the end of step 2 (two hours in), failing with the cap's code
    code, message = classify_error(raised.value)
    assert code is TrainerErrorCode.RUN_TIME_EXCEEDED
    assert "run-time cap of 2 h" in message and "step 2" in message
    # and the checkpoint of that step was published to the output
    assert Path(tmp_path / "out", OutputNames.checkpoint(2), CHECKPOINT_COMPLETE_MARKER).exists()


def test_a_run_without_a_cap_trains_to_the_end(
    counting_plan: Any, run_job: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a plan written before the cap existed, on the same fast clock
    from trainer import callbacks

    monkeypatch.setattr(callbacks, "training_clock", HourPerLook())
    plan = counting_plan(options={"max_steps": 2})

    # When it trains, Then it finishes
    result, _ = run_job(plan, tmp_path / "work")
    assert result.outcome == "done" and result.global_step == 2
