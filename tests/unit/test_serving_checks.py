"""The serve-compatibility checks, on artifact facts alone."""

from __future__ import annotations

from typing import Any

from whetstone.core.serving import (
    ModelFacts,
    ServingLimits,
    blocking,
    check_golden,
    check_servable,
)

TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def adapter(**overrides: Any) -> dict[str, Any]:
    return {"r": 8, "target_modules": ["q_proj", "v_proj"], **overrides}


def facts(**overrides: Any) -> ModelFacts:
    values: dict[str, Any] = {
        "adapter_config": adapter(),
        "chat_template": TEMPLATE,
        "base_chat_template": TEMPLATE,
        "base_known": True,
    }
    return ModelFacts(**{**values, **overrides})


def codes(model: ModelFacts, limits: ServingLimits | None = None) -> list[str]:
    return [p.code for p in check_servable(model, limits or ServingLimits())]


def test_an_adapter_within_the_limits_with_its_training_template_is_servable() -> None:
    assert check_servable(facts(), ServingLimits()) == []


def test_a_rank_above_the_max_says_which_rank_to_retrain_with_or_deploy_with() -> None:
    (problem,) = check_servable(facts(adapter_config=adapter(r=64)), ServingLimits())

    assert problem.code == "lora_rank_too_high"
    assert "r=64" in problem.message and "max_lora_rank=16" in problem.message
    assert "lora.r <= 16" in problem.message and "max_lora_rank=64" in problem.message


def test_a_rank_pattern_above_the_max_counts_as_the_adapter_rank() -> None:
    model = facts(adapter_config=adapter(rank_pattern={"layers.0.q_proj": 24}))

    assert codes(model) == ["lora_rank_too_high"]
    assert codes(model, ServingLimits(max_lora_rank=32)) == []


def test_a_rank_a_raised_max_covers_is_servable() -> None:
    assert codes(facts(adapter_config=adapter(r=256)), ServingLimits(max_lora_rank=256)) == []


def test_target_modules_the_server_does_not_serve_are_named() -> None:
    (problem,) = check_servable(
        facts(adapter_config=adapter(target_modules=["q_proj", "mlp.fc_in"])), ServingLimits()
    )

    assert problem.code == "target_modules_unsupported" and "fc_in" in problem.message


def test_lora_on_the_output_head_or_embeddings_is_refused() -> None:
    model = facts(adapter_config=adapter(target_modules=["q_proj", "lm_head", "embed_tokens"]))

    assert codes(model) == ["lora_on_embeddings"]


def test_modules_to_save_and_dora_are_refused() -> None:
    model = facts(adapter_config=adapter(modules_to_save=["lm_head"], use_dora=True))

    assert codes(model) == ["modules_to_save", "dora_unsupported"]


def test_a_target_pattern_is_a_warning_that_does_not_block() -> None:
    problems = check_servable(
        facts(adapter_config=adapter(target_modules=".*proj")), ServingLimits()
    )

    assert [p.code for p in problems] == ["target_modules_pattern"] and blocking(problems) == []


def test_a_chat_template_unlike_the_base_tokenizers_is_refused() -> None:
    assert codes(facts(chat_template="{{ messages }}")) == ["chat_template_changed"]


def test_a_base_that_cannot_be_read_skips_the_template_comparison() -> None:
    model = facts(chat_template="{{ messages }}", base_chat_template=None, base_known=False)

    assert codes(model) == []


def test_a_model_without_a_chat_template_is_refused() -> None:
    assert codes(facts(chat_template=None)) == ["chat_template_missing"]


def test_a_full_model_skips_the_adapter_checks() -> None:
    assert codes(facts(adapter_config=None)) == []


def test_the_golden_check_passes_on_equal_answers_and_explains_a_difference() -> None:
    assert check_golden("Paris", "Paris") is None

    problem = check_golden("Paris", "paris.")

    assert problem is not None and problem.code == "golden_mismatch"
    assert "'Paris'" in problem.message and "'paris.'" in problem.message
    assert "chat template" in problem.message
