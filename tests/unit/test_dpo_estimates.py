"""Estimates for dpo: the weights its tuning trains, two sequences per pair, a reference."""

from __future__ import annotations

from typing import Any

import pytest

from whetstone.core.catalog.base_models import get_base_model
from whetstone.core.estimates import check_fit, estimate_cost, estimate_memory
from whetstone.core.spec import JobSpec, Method
from whetstone.service.planning import model_requirements

MODEL = get_base_model("llama-3.1-8b-instruct")
H100 = {"gpu_type": "nvidia-h100"}


def _spec(method: str, **fields: Any) -> JobSpec:
    return JobSpec.model_validate({"base_model": MODEL.id, "method": method, **fields})


@pytest.mark.parametrize("tuning", ["lora", "qlora", "full"])
def test_dpo_trains_the_weights_its_tuning_names_on_twice_the_activations(tuning: str) -> None:
    # Given a dpo job and a job of the method its tuning names, alike otherwise
    dpo = estimate_memory(MODEL, _spec("dpo", dpo={"tuning": tuning}, hardware=H100))
    plain = estimate_memory(MODEL, _spec(tuning, hardware=H100))
    # Then they train the same parameters, and dpo holds twice the activations (chosen and
    # rejected), and for full tuning a frozen reference copy of the weights
    assert dpo.trainable_parameters == plain.trainable_parameters
    assert dpo.activations_gib == pytest.approx(2 * plain.activations_gib, rel=0.01)
    copies = 2 if tuning == "full" else 1
    assert dpo.weights_gib == pytest.approx(copies * plain.weights_gib, rel=0.01)


def test_dpo_takes_three_times_lora_per_pair_of_default_length() -> None:
    # Given a dpo (lora) job and a lora job on the same 1,000 unmeasured examples
    alike: dict[str, Any] = {"hardware": H100, "advanced": {"gradient_checkpointing": False}}
    dpo = estimate_cost(MODEL, _spec("dpo", **alike), 1000)
    lora = estimate_cost(MODEL, _spec("lora", **alike), 1000)
    # Then dpo runs two sequences an example, each with a reference forward pass on top of
    # the forward and backward: three times lora's training time
    assert dpo.total_tokens == 2 * lora.total_tokens
    assert dpo.training_flops == pytest.approx(3 * lora.training_flops, rel=0.01)


def test_model_requirements_give_dpo_its_own_memory_figure() -> None:
    # When the requirements of a model are listed
    needs = {need.method: need for need in model_requirements(MODEL)}
    # Then dpo (lora by default) needs more than lora, for the same trainable parameters
    assert needs[Method.DPO].trainable_parameters == needs[Method.LORA].trainable_parameters
    assert needs[Method.DPO].required_gib > needs[Method.LORA].required_gib


def test_a_dpo_job_that_does_not_fit_is_offered_qlora_tuning() -> None:
    # Given a full dpo job of an 8B model, one pair a batch, too big for one L4
    spec = _spec(
        "dpo",
        dpo={"tuning": "full"},
        training={"batch_size": 1},
        hardware={"gpu_type": "nvidia-l4"},
    )
    # When its fit is checked
    fit = check_fit(MODEL, spec)
    # Then the changes offered include tuning it through qlora, not another method
    settings = {change.setting: change.value for change in fit.setting_changes}
    assert settings.get("dpo.tuning") == "qlora"
    assert "method" not in settings
