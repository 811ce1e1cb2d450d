"""Training behaviour: learning, early stopping, resume, NaN, streaming, packing."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from whetstone.core.events import TrainerErrorCode, TrainerPhase
from whetstone.core.layout import CHECKPOINT_COMPLETE_MARKER, OutputNames


def test_model_learns_the_counting_task(counting_plan: Any, run_job: Any, tmp_path: Path) -> None:
    # Given a full fine-tune for one epoch, evaluated before the first step and every 10
    plan = counting_plan(
        method="full",
        training={"learning_rate": 5e-3, "warmup_steps": 2},
        advanced={"eval_strategy": "steps", "eval_steps": 10, "logging_steps": 5},
        options={"max_steps": None, "evaluate_at_start": True},
    )
    # When it trains
    result, sink = run_job(plan, tmp_path / "work")
    # Then held-out loss falls well below where it started
    eval_losses = [m.eval_loss for m in sink.of("metrics") if m.eval_loss is not None]
    assert result.global_step == 25
    assert eval_losses[-1] < 0.65 * eval_losses[0]
    assert result.results["test_loss"] < 0.65 * eval_losses[0]
    assert result.results["test_perplexity"] == pytest.approx(math.exp(result.results["test_loss"]))


def test_a_short_run_without_a_warmup_set_reaches_its_peak_learning_rate(
    counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given a 30-step run at 1e-3 that leaves warmup and dataloader workers unset
    plan = counting_plan(
        training={"learning_rate": 1e-3, "warmup_steps": None},
        advanced={"dataloader_workers": None},
        options={"max_steps": 30},
    )
    # When it trains
    result, sink = run_job(plan, tmp_path / "work")
    # Then the warmup was a tenth of the run, logged and recorded in the run manifest
    logs = {log.message: log.fields for log in sink.of("log")}
    assert logs["schedule decided"] == {
        "optimizer_steps": 30,
        "warmup_steps": 3,
        "warmup_derived": True,
    }
    manifest = json.loads((tmp_path / "out" / OutputNames.RUN_MANIFEST).read_text())
    assert manifest["runtime"]["warmup_steps"] == 3
    # and the learning rate reached its peak on the first step after the warmup (each step
    # reports the rate it trained with)
    rates = {m.step: m.learning_rate for m in sink.of("metrics") if m.learning_rate is not None}
    assert result.global_step == 30
    assert rates[4] == pytest.approx(1e-3)
    assert max(rates.values()) == pytest.approx(1e-3)
    # and the loader took no more workers than the process has cores to spare
    workers = logs["runtime decided"]["dataloader_workers"]
    assert workers == manifest["runtime"]["dataloader_workers"]
    assert 0 <= workers <= min(4, len(os.sched_getaffinity(0)) - 1)


def test_early_stopping_ends_training_and_keeps_the_best_checkpoint(
    counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given a learning rate high enough that validation loss soon stops improving
    plan = counting_plan(
        method="full",
        training={"learning_rate": 1e-2},
        advanced={
            "early_stopping": True,
            "early_stopping_patience": 1,
            "eval_strategy": "steps",
            "eval_steps": 2,
            "save_strategy": "steps",
            "save_steps": 2,
        },
        options={"max_steps": 40},
    )
    # When it trains
    result, sink = run_job(plan, tmp_path / "work")
    # Then it stopped before max_steps, right after the first evaluation without improvement
    evals = [(m.step, m.eval_loss) for m in sink.of("metrics") if m.eval_loss is not None]
    best_step, best_loss = min(evals, key=lambda e: e[1])
    assert result.results["stopped_early"] and result.global_step < 40
    assert evals[-1][0] == best_step + 2 and evals[-1][1] >= best_loss
    assert result.results["best_checkpoint"] == f"checkpoint-{best_step}"
    assert result.results["best_eval_loss"] == pytest.approx(best_loss)
    # and every checkpoint was reported where it lies
    for checkpoint in sink.of("checkpoint"):
        assert Path(checkpoint.location, CHECKPOINT_COMPLETE_MARKER).exists() or checkpoint.step < (
            result.global_step - 2
        )


class StopAtStep:
    """Behaves as if SIGTERM arrived during step `step`."""

    def __init__(self, step: int) -> None:
        self.training = False
        self.step = step
        self.checks = 0

    @property
    def requested(self) -> bool:
        if self.training:
            self.checks += 1  # read once per optimizer step, in on_step_end
        return self.checks >= self.step


def test_interrupted_run_resumes_with_the_same_step_optimizer_and_data_order(
    counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given the same plan run straight through, and run to an interruption at step 3
    def plan(output: Path) -> Any:
        return counting_plan(
            output,
            training={"warmup_steps": 2},
            options={"max_steps": 8},
        )

    straight, straight_events = run_job(plan(tmp_path / "straight"), tmp_path / "w1")
    interrupted, interrupted_events = run_job(
        plan(tmp_path / "out"), tmp_path / "w2", StopAtStep(3)
    )

    # When the interrupted one is started again with the same output (and a fresh workdir)
    resumed, resumed_events = run_job(plan(tmp_path / "out"), tmp_path / "w3")

    # Then it stopped cleanly at step 3 with a checkpoint
    assert interrupted.outcome == "interrupted" and interrupted.global_step == 3
    assert interrupted_events.of("status")[-1].phase is TrainerPhase.INTERRUPTED
    assert [c.step for c in interrupted_events.of("checkpoint")] == [3]
    # and the resumed run continued from step 4 with the losses of the straight run
    straight_loss = {m.step: m.loss for m in straight_events.of("metrics") if m.loss is not None}
    resumed_loss = {m.step: m.loss for m in resumed_events.of("metrics") if m.loss is not None}
    assert sorted(resumed_loss) == [4, 5, 6, 7, 8]
    for step, loss in resumed_loss.items():
        assert loss == pytest.approx(straight_loss[step], rel=1e-4)
    assert resumed.outcome == "done" and resumed.global_step == straight.global_step == 8


def test_nan_loss_stops_the_job_with_a_clear_error(
    tiny_model_dir: Path, counting_data: Path, tmp_path: Path, make_plan: Any, run_job: Any
) -> None:
    # Given a model whose weights hold a NaN
    from trainer.__main__ import classify_error
    from trainer.loop import NonFiniteLossError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    broken = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        broken.model.norm.weight[0] = float("nan")
    broken.save_pretrained(tmp_path / "broken")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "broken")
    plan = make_plan(tmp_path / "broken", counting_data, tmp_path / "out", method="full")

    # When it trains, Then the first step raises, classified as a non-finite loss
    with pytest.raises(NonFiniteLossError) as raised:
        run_job(plan, tmp_path / "work")
    code, message = classify_error(raised.value)
    assert code is TrainerErrorCode.NON_FINITE_LOSS and "learning rate" in message


def test_streamed_split_trains_for_the_steps_the_manifest_implies(
    counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given a streamed train split of 200 examples, batch 8, accumulation 2
    plan = counting_plan(
        dataset={"streaming": True},
        training={"gradient_accumulation_steps": 2},
        options={"max_steps": None, "stream_buffer": 64},
    )
    # When it trains
    result, sink = run_job(plan, tmp_path / "work")
    # Then it ran ceil(ceil(200 / 8) / 2) optimizer steps
    assert result.outcome == "done" and result.global_step == 13
    assert [m.step for m in sink.of("metrics") if m.loss is not None][-1] == 13


def test_packed_batches_train_like_padded_ones(
    counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given the same batches, once padded and once packed into one row each
    runs = {}
    for batching in ("padded", "packed"):
        plan = counting_plan(
            tmp_path / batching,
            options={"batching": batching, "max_steps": 2},
        )
        _, sink = run_job(plan, tmp_path / f"w-{batching}")
        runs[batching] = [m for m in sink.of("metrics") if m.loss is not None]
    # Then losses match step by step (attention stays inside each example)
    for padded, packed in zip(runs["padded"], runs["packed"], strict=True):
        assert packed.loss == pytest.approx(padded.loss, rel=1e-4)
    # and fewer tokens are processed only by dropping padding, never examples
    assert runs["packed"][-1].tokens_per_second is not None


def test_results_metrics_history_and_run_manifest_are_written(
    counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    plan = counting_plan()
    run_job(plan, tmp_path / "work")
    out = tmp_path / "out"
    manifest = json.loads((out / OutputNames.RUN_MANIFEST).read_text())
    history = [json.loads(line) for line in (out / OutputNames.METRICS).read_text().splitlines()]
    results = json.loads((out / OutputNames.RESULTS).read_text())
    assert manifest["spec"]["method"] == "lora" and manifest["seed"] == 42
    assert {"torch", "transformers", "peft"} <= manifest["libraries"].keys()
    assert len(manifest["dataset"]["file_sha256"]["train"]) == 64
    assert manifest["runtime"]["precision"] == "fp32"
    # on a CPU, batches are packed and attention runs per example
    assert manifest["runtime"]["batching"] == "packed"
    assert manifest["runtime"]["attention"] == "whetstone_packed_sdpa"
    assert [row["step"] for row in history] == [1, 2, 3]
    assert results["artifact_kind"] == "adapter" and "test_loss" in results
    model_card = (out / OutputNames.MODEL / "README.md").read_text()
    assert "Fine-tuned by Whetstone job" in model_card and "## Evaluation" in model_card


def test_a_golden_answer_that_cannot_be_computed_leaves_the_run_done_with_a_warning(
    counting_plan: Any, run_job: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainer import recipe

    def out_of_memory(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError("the base model does not fit")

    monkeypatch.setattr(recipe.ChatModel, "load", out_of_memory)
    plan = counting_plan(method="lora")

    result, sink = run_job(plan, tmp_path / "work")

    assert result.outcome == "done"
    assert sink.of("status")[-1].phase is TrainerPhase.DONE
    warnings = [log.message for log in sink.of("log") if log.level == "warning"]
    assert any("no golden answer recorded" in m and "MemoryError" in m for m in warnings)
    assert not (tmp_path / "out" / OutputNames.GOLDEN).exists()
    assert (tmp_path / "out" / OutputNames.MODEL / "adapter_config.json").exists()
