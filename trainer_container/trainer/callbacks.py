"""Trainer callbacks: metrics events and warnings, checkpoint publishing, stop on SIGTERM."""

from __future__ import annotations

import math
import time
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from whetstone.core.events import MetricsDetail
from whetstone.core.layout import checkpoint_name

from .checkpoints import CheckpointStore, StopRequest
from .efficiency import EfficiencyMeter
from .events import EventEmitter

LOSS_SPIKE_FACTOR = 3.0
GRAD_EXPLOSION_FACTOR = 10.0
_EMA = 0.9


def _number(logs: dict[str, Any], key: str) -> float | None:
    value = logs.get(key)
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class MetricsCallback(TrainerCallback):
    """Sends a metrics event per log (and per evaluation); warns on spikes; keeps history."""

    def __init__(
        self, emitter: EventEmitter, samples_per_step: int, efficiency: EfficiencyMeter
    ) -> None:
        self.emitter = emitter
        self.samples_per_step = samples_per_step
        self.efficiency = efficiency
        self.history: list[dict[str, Any]] = []
        self._start_time = 0.0
        self._start_step = 0
        self._start_tokens = 0
        self._loss_ema: float | None = None
        self._grad_ema: float | None = None

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        self._start_time = time.monotonic()
        self._start_step = state.global_step
        self._start_tokens = state.num_input_tokens_seen
        self.efficiency.reset()

    def _watch(self, loss: float | None, grad_norm: float | None, step: int) -> None:
        if loss is not None:
            if self._loss_ema is not None and loss > LOSS_SPIKE_FACTOR * self._loss_ema:
                self.emitter.log(
                    "warning", "loss spike", step=step, loss=loss, recent_loss=self._loss_ema
                )
            self._loss_ema = (
                loss if self._loss_ema is None else _EMA * self._loss_ema + (1 - _EMA) * loss
            )
        if grad_norm is not None:
            if self._grad_ema is not None and grad_norm > GRAD_EXPLOSION_FACTOR * self._grad_ema:
                self.emitter.log(
                    "warning",
                    "gradient explosion",
                    step=step,
                    grad_norm=grad_norm,
                    recent_grad_norm=self._grad_ema,
                )
            self._grad_ema = (
                grad_norm
                if self._grad_ema is None
                else _EMA * self._grad_ema + (1 - _EMA) * grad_norm
            )

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        logs = logs or {}
        if not ({"loss", "eval_loss"} & logs.keys()):  # e.g. the end-of-training summary
            return
        step, max_steps = state.global_step, max(state.max_steps, state.global_step)
        elapsed = max(time.monotonic() - self._start_time, 1e-9)
        steps_done = step - self._start_step
        loss, grad_norm = _number(logs, "loss"), _number(logs, "grad_norm")
        self._watch(loss, grad_norm, step)
        efficiency = self.efficiency.rates(elapsed) if steps_done else {}
        detail = MetricsDetail(
            step=step,
            max_steps=max_steps,
            epoch=max(0.0, float(state.epoch or 0.0)),
            progress=step / max_steps if max_steps else 0.0,
            loss=loss,
            eval_loss=_number(logs, "eval_loss"),
            learning_rate=_number(logs, "learning_rate"),
            grad_norm=grad_norm,
            samples_per_second=steps_done * self.samples_per_step / elapsed if steps_done else None,
            tokens_per_second=(state.num_input_tokens_seen - self._start_tokens) / elapsed
            if steps_done
            else None,
            eta_seconds=(max_steps - step) * elapsed / steps_done if steps_done else None,
            rewards_chosen=_number(logs, "rewards_chosen"),
            rewards_rejected=_number(logs, "rewards_rejected"),
            reward_margin=_number(logs, "reward_margin"),
            reward_accuracy=_number(logs, "reward_accuracy"),
            **efficiency,
        )
        self.history.append(detail.model_dump(mode="json"))
        self.emitter.metrics(detail)


class CheckpointCallback(TrainerCallback):
    """Publishes each saved checkpoint to the output location and reports it."""

    def __init__(self, store: CheckpointStore, emitter: EventEmitter) -> None:
        self.store = store
        self.emitter = emitter

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        location = self.store.publish(checkpoint_name(state.global_step))
        eval_loss = next(
            (
                entry["eval_loss"]
                for entry in reversed(state.log_history)
                if entry.get("step") == state.global_step and "eval_loss" in entry
            ),
            None,
        )
        self.emitter.checkpoint(
            step=state.global_step,
            epoch=float(state.epoch or 0.0),
            location=location,
            eval_loss=eval_loss,
        )


class StopOnSignalCallback(TrainerCallback):
    """After SIGTERM: save a checkpoint at the end of the current step and stop training."""

    def __init__(self, stop: StopRequest) -> None:
        self.stop = stop

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        if self.stop.requested:
            control.should_save = True
            control.should_training_stop = True
            control.should_evaluate = False


class RunTimeExceeded(Exception):
    """Training reached the plan's run-time cap (a checkpoint was saved first)."""


def training_clock() -> float:
    """Seconds on a monotonic clock (a test puts its own in its place)."""
    return time.monotonic()


class RunTimeCapCallback(TrainerCallback):
    """At the end of the step during which training time reaches `max_run_hours`: save a
    checkpoint and stop training; the recipe then raises RunTimeExceeded."""

    def __init__(self, max_run_hours: float | None) -> None:
        self.max_run_hours = max_run_hours
        self.reached_at_step: int | None = None
        self._start = 0.0

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        self._start = training_clock()

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        if self.max_run_hours is None or self.reached_at_step is not None:
            return
        if training_clock() - self._start >= self.max_run_hours * 3600:
            self.reached_at_step = state.global_step
            control.should_save = True
            control.should_training_stop = True
            control.should_evaluate = False

    def exceeded(self) -> RunTimeExceeded | None:
        """The error to fail the run with, once the cap was reached."""
        if self.reached_at_step is None:
            return None
        return RunTimeExceeded(
            f"training reached its run-time cap of {self.max_run_hours:g} h "
            f"(hardware.max_run_hours, or the estimate with a margin when unset) at step "
            f"{self.reached_at_step}; a checkpoint of that step was saved"
        )
