"""The model card saved with a trained adapter or model says what it is and how to load it."""

from __future__ import annotations

from typing import Any

from trainer.model_card import render_model_card

from whetstone.core.spec import JobSpec

DATASET = {"source_sha256": "ab" * 32, "split_seed": 42, "counts": {"train": 80, "test": 5}}
RUNTIME = {"precision": "fp32", "device": "cpu", "warmup_steps": 3}
HISTORY = [{"step": 5, "loss": 2.5}, {"step": 10, "loss": 1.25, "eval_loss": 1.5}]


def card(adapter: bool = True, **results: Any) -> str:
    spec = JobSpec.model_validate(
        {"base_model": "qwen2.5-0.5b-instruct", "method": "qlora", "lora": {"r": 8}}
    )
    facts: dict[str, Any] = {"dataset": DATASET, "runtime": RUNTIME, "history": HISTORY}
    return render_model_card(
        job_id="ftjob-abc",
        spec=spec,
        base_model="qwen2.5-0.5b-instruct",
        adapter=adapter,
        results={"global_step": 10, "epoch": 1.0, **results},
        **facts,
    )


def test_the_card_names_the_base_model_settings_data_and_metrics() -> None:
    text = card()

    assert "base_model: qwen2.5-0.5b-instruct" in text and "library_name: peft" in text
    assert "Fine-tuned by Whetstone job `ftjob-abc`." in text
    assert "| lora r / alpha / dropout | 8 / 32 / 0.1 |" in text
    assert "| quantization | 4-bit nf4 |" in text
    assert f"| source sha256 | `{'ab' * 32}` |" in text and "| train examples | 80 |" in text
    assert "| final loss | 1.25 (step 10) |" in text
    assert "| final eval_loss | 1.5 (step 10) |" in text
    assert "AutoPeftModelForCausalLM.from_pretrained" in text


def test_the_card_shows_the_test_evaluation_only_when_there_was_one() -> None:
    assert "## Evaluation" not in card()

    text = card(test_loss=1.0, test_perplexity=2.718281828)

    assert "| test loss | 1.0 |" in text and "| test perplexity | 2.7183 |" in text


def test_a_full_model_card_loads_it_with_transformers() -> None:
    text = card(adapter=False)

    assert "library_name: transformers" in text
    assert "AutoModelForCausalLM.from_pretrained" in text
