"""Efficiency metrics: useful tokens/s, padding waste and MFU, per step and in the results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from trainer import efficiency
from trainer.data import PackingCollator, PaddingCollator
from trainer.efficiency import (
    EfficiencyMeter,
    FlopsModel,
    Peak,
    batch_tokens,
    device_peak,
    flops_model,
    measured_cpu_peak_flops,
)

from whetstone.core.layout import OutputNames
from whetstone.core.spec import JobSpec

ROWS = [
    {"input_ids": [5, 6, 7], "labels": [5, 6, 7]},
    {"input_ids": [5, 6, 7, 8, 9], "labels": [5, 6, 7, 8, 9]},
]


def test_a_padded_batch_counts_its_real_tokens_and_its_padding() -> None:
    # Given two examples of 3 and 5 tokens padded into one batch of 2 x 5
    batch = PaddingCollator(pad_id=0, multiple_of=1)(ROWS)
    # When it is counted
    counted = batch_tokens(batch)
    # Then 8 tokens are useful out of 10 slots, and attention grows with 3^2 + 5^2
    assert (counted.useful, counted.slots, counted.squared_lengths) == (8, 10, 34)


def test_a_packed_batch_has_no_padding_and_keeps_its_examples_apart() -> None:
    # Given the same examples packed into one row
    batch = PackingCollator()(ROWS)
    # When it is counted
    counted = batch_tokens(batch)
    # Then every slot is useful, and attention still costs per example
    assert (counted.useful, counted.slots, counted.squared_lengths) == (8, 8, 34)


def _spec(tiny_model_dir: Path, method: str) -> JobSpec:
    return JobSpec.model_validate(
        {"base_model": str(tiny_model_dir), "method": method, "dataset": {"source": "x.jsonl"}}
    )


def test_a_frozen_base_costs_four_n_per_token_and_full_training_six_n(
    tiny_model_dir: Path,
) -> None:
    # Given the tiny model (hidden 64, 2 layers, tied head) and its facts
    config = json.loads((tiny_model_dir / "config.json").read_text())
    # When the FLOPs models of LoRA (1,000 trainable parameters) and full training are made
    lora = flops_model(config, _spec(tiny_model_dir, "lora"), trainable=1000)
    full = flops_model(config, _spec(tiny_model_dir, "full"), trainable=10**6)
    # Then both charge the same attention, and their weight FLOPs follow 4N + 6T and 6N
    multiplied = full.per_token / 6
    assert lora.per_token == pytest.approx(4 * multiplied + 6 * 1000)
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    assert lora.per_squared_length == full.per_squared_length == 12 * layers * hidden
    # and N is every weight a token is multiplied by, the (tied) head included
    blocks = layers * (4 * hidden * hidden + 3 * hidden * config["intermediate_size"])
    assert blocks < multiplied < blocks + config["vocab_size"] * hidden + 10 * layers * hidden


def test_the_meter_reports_rates_over_the_time_given() -> None:
    # Given a meter of a job on 2 ranks whose model costs 10 FLOPs per token, on a 1 kFLOP/s peak
    meter = EfficiencyMeter(FlopsModel(10.0, 0.0), Peak(1000.0, "test"), world_size=2)
    meter.count(PaddingCollator(pad_id=0, multiple_of=1)(ROWS))
    # When its rates are taken over 2 seconds
    rates = meter.rates(2.0)
    # Then throughput counts both ranks, padding is 2 of 10 slots, MFU this rank's share
    assert rates == {"useful_tokens_per_second": 8.0, "padding_waste_pct": 20.0, "mfu": 0.04}


def test_a_cpus_peak_is_measured_once_per_process() -> None:
    # Given the CPU peak measured once, when it is asked for again, then the figure is kept
    first = measured_cpu_peak_flops()
    assert first > 0 and measured_cpu_peak_flops() == first
    assert device_peak(on_gpu=False) == Peak(first, "cpu: fp32 matmul measured at start")


def test_a_gpu_outside_the_catalog_gives_no_mfu_but_still_its_throughput(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a GPU the hardware catalog does not know
    monkeypatch.setattr(efficiency.torch.cuda, "get_device_name", lambda _: "NVIDIA RTX 9090")
    peak = device_peak(on_gpu=True)
    meter = EfficiencyMeter(FlopsModel(10.0, 0.0), peak)
    meter.count(PackingCollator()(ROWS))
    # When its rates are taken, then MFU is unknown and the tokens are counted all the same
    assert peak.flops is None and "not in the hardware catalog" in peak.source
    assert meter.rates(1.0) == {
        "useful_tokens_per_second": 8.0,
        "padding_waste_pct": 0.0,
        "mfu": None,
    }


def test_a_catalogued_gpu_is_measured_against_its_dense_peak(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(efficiency.torch.cuda, "get_device_name", lambda _: "NVIDIA A10G")
    assert device_peak(on_gpu=True).flops == pytest.approx(70e12)


def _efficiency_series(sink: Any) -> list[Any]:
    return [m for m in sink.of("metrics") if m.useful_tokens_per_second is not None]


def test_a_packed_job_reports_its_efficiency_every_step_and_in_its_results(
    counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given a short LoRA job on a CPU (batches packed)
    plan = counting_plan(options={"max_steps": 3})
    # When it trains
    _, sink = run_job(plan, tmp_path / "work")
    # Then every training step reports useful tokens/s, no padding and an MFU within (0, 1]
    series = _efficiency_series(sink)
    assert [m.step for m in series] == [1, 2, 3]
    for metrics in series:
        assert metrics.useful_tokens_per_second > 0
        assert metrics.padding_waste_pct == 0
        assert 0 < metrics.mfu <= 1
    # and the results and the run manifest hold the run's figures and their peak
    results = json.loads((tmp_path / "out" / OutputNames.RESULTS).read_text())
    manifest = json.loads((tmp_path / "out" / OutputNames.RUN_MANIFEST).read_text())
    assert results["efficiency"] == manifest["efficiency"]
    assert results["efficiency"]["mfu"] == series[-1].mfu
    assert results["efficiency"]["peak_source"].startswith("cpu")
    assert results["efficiency"]["peak_flops"] > 0


def test_padded_batches_report_their_padding_and_count_only_real_tokens(
    counting_plan: Any, run_job: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job whose batches are padded, and a record of the batches it steps on
    seen: list[dict[str, torch.Tensor]] = []
    count = efficiency.EfficiencyMeter.count

    def record(meter: efficiency.EfficiencyMeter, inputs: dict[str, torch.Tensor]) -> None:
        seen.append(inputs)
        count(meter, inputs)

    monkeypatch.setattr(efficiency.EfficiencyMeter, "count", record)
    plan = counting_plan(options={"batching": "padded", "max_steps": 2})
    # When it trains
    _, sink = run_job(plan, tmp_path / "work")
    # Then padding shows as waste
    last = _efficiency_series(sink)[-1]
    slots = sum(batch["input_ids"].numel() for batch in seen)
    real = sum(int(batch["attention_mask"].sum()) for batch in seen)
    assert real < slots
    assert last.padding_waste_pct == pytest.approx(100 * (slots - real) / slots)
    # and useful tokens/s counts the real tokens only: the MFU and throughput agree on them
    results = json.loads((tmp_path / "out" / OutputNames.RESULTS).read_text())
    assert results["efficiency"]["model_flops_per_useful_token"] > 0
    assert 0 < last.mfu <= 1
