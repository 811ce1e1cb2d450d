"""The model card saved with a trained adapter or model says what it is and how to load it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.model_card import write_model_card

from whetstone.core.spec import JobSpec

DATASET = {"source_sha256": "ab" * 32, "split_seed": 42, "counts": {"train": 80, "test": 5}}
RUNTIME = {"precision": "fp32", "device": "cpu", "warmup_steps": 3}
HISTORY = [{"step": 5, "loss": 2.5}, {"step": 10, "loss": 1.25, "eval_loss": 1.5}]


def card(tmp_path: Path, *, adapter: bool = True, **results: Any) -> str:
    spec = JobSpec.model_validate(
        {"base_model": "qwen2.5-0.5b-instruct", "method": "qlora", "lora": {"r": 8}}
    )
    (tmp_path / "README.md").write_text("# Model Card for Model ID\n[More Information Needed]")
    write_model_card(
        tmp_path,
        job_id="ftjob-abc",
        spec=spec,
        base_model="qwen2.5-0.5b-instruct",
        adapter=adapter,
        dataset=DATASET,
        runtime=RUNTIME,
        history=HISTORY,
        results={"global_step": 10, "epoch": 1.0, **results},
    )
    return (tmp_path / "README.md").read_text()


def test_the_card_replaces_the_template_with_base_model_settings_data_and_metrics(
    tmp_path: Path,
) -> None:
    text = card(tmp_path)

    assert "More Information Needed" not in text
    assert "base_model: qwen2.5-0.5b-instruct" in text and "library_name: peft" in text
    assert "Fine-tuned by Whetstone job `ftjob-abc`." in text
    assert "| lora r / alpha / dropout | 8 / 32 / 0.1 |" in text
    assert "| quantization | 4-bit nf4 |" in text
    assert f"| source sha256 | `{'ab' * 32}` |" in text and "| train examples | 80 |" in text
    assert "| final loss | 1.25 (step 10) |" in text
    assert "| final eval_loss | 1.5 (step 10) |" in text
    assert "AutoPeftModelForCausalLM.from_pretrained" in text


def test_the_card_shows_the_test_evaluation_only_when_there_was_one(tmp_path: Path) -> None:
    assert "## Evaluation" not in card(tmp_path)

    text = card(tmp_path, test_loss=1.0, test_perplexity=2.718281828)

    assert "| test loss | 1.0 |" in text and "| test perplexity | 2.7183 |" in text


def test_a_full_model_card_loads_it_with_transformers(tmp_path: Path) -> None:
    text = card(tmp_path, adapter=False)

    assert "library_name: transformers" in text
    assert "AutoModelForCausalLM.from_pretrained" in text
