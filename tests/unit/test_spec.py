"""The job spec carries product.md's defaults and ranges and rejects contradictions."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from whetstone.core.spec import JobSpec, Method, resolve_precision


def make(**fields: Any) -> JobSpec:
    return JobSpec.model_validate({"base_model": "llama-3.1-8b-instruct", **fields})


def error_text(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        make(**fields)
    return str(caught.value)


def test_defaults_are_those_of_product_md() -> None:
    spec = make()

    assert spec.method is Method.LORA
    assert (spec.lora.r, spec.lora.alpha, spec.lora.dropout) == (16, 32, 0.1)
    assert spec.lora.target_modules == ["q_proj", "v_proj"]
    q = spec.quantization
    assert (q.bits, q.quant_type, q.double_quant, q.compute_dtype) == (4, "nf4", True, "float16")
    d = spec.dataset
    assert (d.split.train, d.split.validation, d.split.test) == (80, 15, 5)
    assert (d.max_samples, d.cutoff_length, d.streaming) == (None, 2048, False)
    t = spec.training
    assert (t.learning_rate, t.batch_size, t.epochs) == (2e-4, 4, 3)
    # unset warmup and workers are derived from the run, product.md's values their ceilings
    assert (t.gradient_accumulation_steps, t.warmup_steps, t.weight_decay) == (4, None, 0.01)
    assert t.max_sequence_length == 2048
    a = spec.advanced
    assert (a.early_stopping, a.save_strategy, a.eval_strategy) == (True, "steps", "steps")
    assert (a.logging_steps, a.save_steps, a.eval_steps) == (10, 500, 500)
    assert (a.dataloader_workers, a.fp16, a.gradient_checkpointing) == (None, True, True)
    h = spec.hardware
    assert (h.gpu_type, h.gpu_count, h.storage_gb) == ("nvidia-t4", 1, 100)


@pytest.mark.parametrize(
    ("section", "field", "low", "high"),
    [
        ("lora", "r", 1, 256),
        ("lora", "alpha", 1, 512),
        ("lora", "dropout", 0.0, 0.5),
        ("dataset", "cutoff_length", 128, 2048),
        ("training", "learning_rate", 1e-6, 1e-2),
        ("training", "batch_size", 1, 32),
        ("training", "epochs", 1, 50),
        ("training", "gradient_accumulation_steps", 1, 32),
        ("training", "weight_decay", 0.0, 1.0),
        ("training", "max_sequence_length", 2048, 4096),
        ("advanced", "dataloader_workers", 0, 16),
        ("hardware", "gpu_count", 1, 8),
        ("hardware", "storage_gb", 50, 1000),
    ],
)
def test_range_bounds_are_accepted(section: str, field: str, low: float, high: float) -> None:
    for value in (low, high):
        spec = make(**{section: {field: value}})
        assert getattr(getattr(spec, section), field) == value


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("lora", "r", 0),
        ("lora", "r", 257),
        ("lora", "alpha", 513),
        ("lora", "dropout", 0.51),
        ("dataset", "cutoff_length", 127),
        ("dataset", "cutoff_length", 4097),
        ("dataset", "max_samples", 0),
        ("training", "learning_rate", 1.1e-2),
        ("training", "learning_rate", 9e-7),
        ("training", "batch_size", 33),
        ("training", "epochs", 51),
        ("training", "gradient_accumulation_steps", 0),
        ("training", "warmup_steps", -1),
        ("training", "weight_decay", 1.5),
        ("training", "max_sequence_length", 4097),
        ("advanced", "dataloader_workers", 17),
        ("hardware", "gpu_count", 9),
        ("hardware", "storage_gb", 49),
        ("hardware", "storage_gb", 1001),
        ("quantization", "bits", 7),
        ("quantization", "quant_type", "nf8"),
        ("hardware", "gpu_type", "nvidia-v100"),
    ],
)
def test_out_of_range_values_name_the_field(section: str, field: str, value: Any) -> None:
    assert f"{section}.{field}" in error_text(**{section: {field: value}})


def test_unknown_fields_are_rejected_rather_than_ignored() -> None:
    text = error_text(training={"learning_rat": 1e-4})
    assert "training" in text and "unknown field 'learning_rat'" in text


@pytest.mark.parametrize(
    ("section", "typo", "meant"),
    [("training", "epoch", "epochs"), ("lora", "rank", "r"), ("training", "lr", "learning_rate")],
)
def test_an_unknown_field_suggests_the_closest_known_one(
    section: str, typo: str, meant: str
) -> None:
    text = error_text(**{section: {typo: 1}})
    assert f"unknown field {typo!r}; did you mean {meant!r}?" in text
    assert "Extra inputs" not in text and "docs/job-spec.md" in text


def test_an_unknown_field_like_no_known_one_lists_the_known_fields() -> None:
    text = error_text(dataset={"zzz": 1})
    assert "known fields: source, format, columns, split" in text


def test_all_linear_targets_every_linear_layer_alone() -> None:
    assert make(lora={"target_modules": "all-linear"}).lora.target_modules == ["all-linear"]
    assert "give it alone" in error_text(lora={"target_modules": ["all-linear", "q_proj"]})
    assert "not a module name" in error_text(lora={"target_modules": ["q proj"]})


@pytest.mark.parametrize("bits", [2, 3, 5, 6, 8])
def test_nf4_and_fp4_exist_only_at_4_bits(bits: int) -> None:
    for quant_type in ("nf4", "fp4"):
        text = error_text(method="qlora", quantization={"bits": bits, "quant_type": quant_type})
        assert f"quant_type {quant_type} exists only at 4 bits" in text
    spec = make(method="qlora", quantization={"bits": bits, "quant_type": "int4"})
    assert spec.quantization.bits == bits


def test_default_quant_type_follows_the_bit_width() -> None:
    assert make(method="qlora", quantization={"bits": 8}).quantization.quant_type == "int4"
    assert make(method="qlora", quantization={"bits": 4}).quantization.quant_type == "nf4"


def test_t4_has_no_bf16() -> None:
    assert "NVIDIA T4 has no bfloat16" in error_text(advanced={"bf16": True})
    text = error_text(method="qlora", quantization={"compute_dtype": "bfloat16"})
    assert "set quantization.compute_dtype to float16" in text
    spec = make(advanced={"bf16": True}, hardware={"gpu_type": "nvidia-a10g"})
    assert spec.advanced.bf16


def test_split_must_sum_to_100() -> None:
    assert "sums to 95" in error_text(dataset={"split": {"train": 80, "validation": 10}})
    assert make(dataset={"split": "70/20/10"}).dataset.split.validation == 20
    assert "must look like" in error_text(dataset={"split": "70-30"})


def test_instance_type_is_derived_and_contradictions_are_rejected() -> None:
    assert make().hardware.instance_type == "g4dn.xlarge"
    assert make(hardware={"gpu_type": "nvidia-a10g", "gpu_count": 4}).hardware.instance_type == (
        "g5.12xlarge"
    )
    assert make(hardware={"instance_type": "g4dn.xlarge"}).hardware.instance_type == "g4dn.xlarge"
    text = error_text(hardware={"gpu_type": "nvidia-l4", "instance_type": "g5.xlarge"})
    assert "runs on g6.xlarge" in text


def test_prompt_tuning_text_init_needs_a_text() -> None:
    assert "needs init_text" in error_text(method="prompt_tuning", prompt_tuning={"init": "text"})
    assert "used only with init 'text'" in error_text(prompt_tuning={"init_text": "Classify:"})


def test_early_stopping_needs_matching_evaluation_and_saving() -> None:
    assert "needs evaluation" in error_text(advanced={"eval_strategy": "no"})
    assert "must equal eval_strategy" in error_text(advanced={"save_strategy": "epoch"})
    assert "multiple of eval_steps" in error_text(advanced={"save_steps": 250})
    spec = make(advanced={"early_stopping": False, "eval_strategy": "no", "save_strategy": "no"})
    assert not spec.advanced.early_stopping


def test_cutoff_cannot_exceed_the_sequence_length() -> None:
    text = error_text(dataset={"cutoff_length": 4096})
    assert "dataset.cutoff_length (4096) exceeds training.max_sequence_length (2048)" in text


@pytest.mark.parametrize(
    ("fields", "gpu_bf16", "expected"),
    [
        ({}, None, "fp32"),
        ({}, False, "fp16"),
        ({}, True, "bf16"),
        ({"advanced": {"fp16": False}}, True, "fp32"),
    ],
)
def test_precision_is_chosen_from_the_device(
    fields: dict[str, Any], gpu_bf16: bool | None, expected: str
) -> None:
    assert resolve_precision(make(**fields), gpu_bf16=gpu_bf16) == expected


def test_prompt_tuning_defaults_to_its_own_learning_rate_and_takes_up_to_0_3() -> None:
    # Given prompt tuning specs without a learning rate and with the largest one
    unset = make(method="prompt_tuning")
    largest = make(method="prompt_tuning", training={"learning_rate": 0.3})
    # Then the unset one trains at PEFT's prompt-tuning rate, and the largest is kept
    assert unset.training.learning_rate == 3e-2
    assert largest.training.learning_rate == 0.3
    # and another method keeps product.md's default
    assert make(method="lora").training.learning_rate == 2e-4


def test_a_prompt_tuning_spec_read_back_keeps_its_learning_rate() -> None:
    # Given a prompt tuning spec stored with its derived learning rate
    stored = make(method="prompt_tuning").model_dump(mode="json")
    # When it is read back Then the rate is the same
    assert JobSpec.model_validate(stored).training.learning_rate == 3e-2


@pytest.mark.parametrize("method", ["lora", "qlora", "full", "dpo"])
def test_a_learning_rate_above_0_01_is_refused_for_methods_other_than_prompt_tuning(
    method: str,
) -> None:
    text = error_text(method=method, training={"learning_rate": 0.03})

    assert f"training.learning_rate (0.03) exceeds 0.01, the most for {method}" in text
    assert "only prompt_tuning takes up to 0.3" in text


def test_a_prompt_tuning_learning_rate_above_0_3_names_the_field() -> None:
    assert "training.learning_rate" in error_text(
        method="prompt_tuning", training={"learning_rate": 0.31}
    )
