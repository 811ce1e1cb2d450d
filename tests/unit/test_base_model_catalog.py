"""The base-model catalog and the config.json resolver."""

from __future__ import annotations

import re
from typing import Any

import pytest

from whetstone.core.catalog.base_models import BASE_MODELS, BASE_MODELS_BY_ID, get_base_model
from whetstone.core.catalog.model_facts import BaseModelInfo
from whetstone.core.catalog.resolve import count_parameters, facts_from_hf_config

SLUG = re.compile(r"^[a-z0-9]+(?:[.-][a-z0-9]+)*$")
HF_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
REQUIRED_IDS = (
    "mistral-7b-instruct-v0.3",
    "codellama-13b-instruct",
    "llama-3.3-70b-instruct",
    "llama-3.1-8b-instruct",
)
FAMILIES = ("llama", "mistral", "qwen", "phi", "gemma", "deepseek")
UNGATED_FAMILIES = ("qwen", "phi", "deepseek")


def _ids(models: tuple[BaseModelInfo, ...]) -> list[str]:
    return [model.id for model in models]


# --- The catalog -----------------------------------------------------------------------------


def test_catalog_has_at_least_thirty_unique_ids() -> None:
    ids = _ids(BASE_MODELS)
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)
    assert set(BASE_MODELS_BY_ID) == set(ids)


@pytest.mark.parametrize("model_id", REQUIRED_IDS)
def test_required_id_when_looked_up_then_found(model_id: str) -> None:
    assert get_base_model(model_id).id == model_id


def test_unknown_id_when_looked_up_then_raises_key_error() -> None:
    with pytest.raises(KeyError, match="no-such-model"):
        get_base_model("no-such-model")


def test_catalog_has_every_family_of_product_md() -> None:
    assert {model.family for model in BASE_MODELS} >= set(FAMILIES)


@pytest.mark.parametrize("model", BASE_MODELS, ids=_ids(BASE_MODELS))
def test_entry_when_inspected_then_ids_and_repo_are_well_formed(model: BaseModelInfo) -> None:
    assert SLUG.match(model.id), model.id
    assert HF_REPO.match(model.hf_repo), model.hf_repo
    assert model.name
    assert model.license
    assert model.best_for


@pytest.mark.parametrize("model", BASE_MODELS, ids=_ids(BASE_MODELS))
def test_entry_when_architecture_counted_then_matches_published_size(
    model: BaseModelInfo,
) -> None:
    # Vision entries publish the whole checkpoint but describe only the text decoder, so
    # their count runs a little short; 10% holds for every entry all the same.
    counted = count_parameters(model.architecture)
    assert counted == pytest.approx(model.num_parameters, rel=0.10), model.id
    if model.modality == "text":
        assert counted == pytest.approx(model.num_parameters, rel=0.01), model.id


@pytest.mark.parametrize("model", BASE_MODELS, ids=_ids(BASE_MODELS))
def test_entry_when_inspected_then_head_width_is_consistent(model: BaseModelInfo) -> None:
    arch = model.architecture
    assert arch.num_attention_heads % arch.num_key_value_heads == 0
    assert arch.experts_per_token <= arch.num_experts
    if arch.num_experts == 1:
        assert model.active_parameters == model.num_parameters


def test_llama_3_1_8b_when_counted_then_matches_the_exact_published_count() -> None:
    model = get_base_model("llama-3.1-8b-instruct")
    assert model.num_parameters == 8_030_261_248
    assert count_parameters(model.architecture) == model.num_parameters


def test_mixtral_when_active_parameters_asked_then_below_total() -> None:
    mixtral = next(model for model in BASE_MODELS if model.architecture.num_experts > 1)
    assert mixtral.architecture.num_experts == 8
    assert mixtral.architecture.experts_per_token == 2
    assert mixtral.active_parameters < mixtral.num_parameters
    assert mixtral.active_parameters == pytest.approx(12.9e9, rel=0.02)


def test_gating_when_inspected_then_follows_the_family_licence() -> None:
    for model in BASE_MODELS:
        if model.family in UNGATED_FAMILIES:
            assert not model.gated, model.id
        if model.family in ("gemma", "mistral") or model.hf_repo.startswith("meta-llama/"):
            assert model.gated, model.id


def test_vision_models_when_listed_then_include_llama_and_qwen() -> None:
    vision = {model.id for model in BASE_MODELS if model.modality == "vision"}
    assert vision == {
        "llama-3.2-11b-vision-instruct",
        "llama-3.2-90b-vision-instruct",
        "qwen2.5-vl-7b-instruct",
    }


def test_gemma_and_nemo_when_inspected_then_keep_their_explicit_head_dim() -> None:
    assert get_base_model("gemma-7b-it").architecture.head_dim == 256
    assert get_base_model("mistral-nemo-instruct-2407").architecture.head_dim == 128


# --- facts_from_hf_config --------------------------------------------------------------------


def _llama_config() -> dict[str, Any]:
    return {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "num_hidden_layers": 32,
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": False,
    }


def test_llama_config_when_resolved_then_matches_catalog_entry() -> None:
    info = facts_from_hf_config(_llama_config(), model_id="my-llama", name="My Llama")

    assert info.family == "llama"
    assert info.license == "unknown"
    assert info.name == "My Llama"
    assert info.modality == "text"
    assert info.architecture == get_base_model("llama-3.1-8b-instruct").architecture
    assert info.num_parameters == 8_030_261_248


def test_config_without_kv_heads_or_name_when_resolved_then_defaults_apply() -> None:
    config = _llama_config()
    del config["num_key_value_heads"]

    info = facts_from_hf_config(config, model_id="mha-llama")

    assert info.architecture.num_key_value_heads == 32
    assert info.architecture.head_dim == 128
    assert info.name == "mha-llama"


def test_mixtral_config_when_resolved_then_experts_are_counted() -> None:
    config = {
        "model_type": "mixtral",
        "num_hidden_layers": 32,
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 32000,
        "max_position_embeddings": 32768,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
        "tie_word_embeddings": False,
    }

    info = facts_from_hf_config(config, model_id="my-mixtral")

    assert info.family == "mistral"
    assert info.architecture.num_experts == 8
    assert info.architecture.experts_per_token == 2
    assert info.num_parameters == get_base_model("mixtral-8x7b-instruct-v0.1").num_parameters
    assert info.active_parameters < info.num_parameters


def test_qwen_moe_config_when_resolved_then_uses_expert_width() -> None:
    config = {
        "model_type": "qwen3_moe",
        "num_hidden_layers": 48,
        "hidden_size": 2048,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "head_dim": 128,
        "intermediate_size": 6144,
        "moe_intermediate_size": 768,
        "num_experts": 128,
        "num_experts_per_tok": 8,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
        "tie_word_embeddings": False,
    }

    info = facts_from_hf_config(config, model_id="qwen3-30b-a3b")

    assert info.family == "qwen"
    assert info.architecture.intermediate_size == 768
    assert info.num_parameters == pytest.approx(30.5e9, rel=0.02)
    assert info.active_parameters == pytest.approx(3.3e9, rel=0.05)


def test_nested_text_config_when_resolved_then_reads_the_text_decoder() -> None:
    config = {
        "model_type": "mllama",
        "architectures": ["MllamaForConditionalGeneration"],
        "vision_config": {"hidden_size": 1280, "num_hidden_layers": 32},
        "text_config": {
            "model_type": "mllama_text_model",
            "num_hidden_layers": 40,
            "hidden_size": 4096,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "intermediate_size": 14336,
            "vocab_size": 128256,
            "max_position_embeddings": 131072,
            "tie_word_embeddings": False,
        },
    }

    info = facts_from_hf_config(config, model_id="my-vision")

    assert info.modality == "vision"
    assert info.family == "llama"
    assert info.architecture == get_base_model("llama-3.2-11b-vision-instruct").architecture


def test_gemma_config_without_tie_flag_when_resolved_then_ties_embeddings() -> None:
    config = {
        "model_type": "gemma",
        "num_hidden_layers": 28,
        "hidden_size": 3072,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "head_dim": 256,
        "intermediate_size": 24576,
        "vocab_size": 256000,
        "max_position_embeddings": 8192,
    }

    info = facts_from_hf_config(config, model_id="my-gemma")

    assert info.family == "gemma"
    assert info.architecture == get_base_model("gemma-7b-it").architecture
    assert info.num_parameters == get_base_model("gemma-7b-it").num_parameters


def test_unknown_model_type_when_resolved_then_family_is_custom() -> None:
    config = {**_llama_config(), "model_type": "falcon_mamba_whatever"}

    assert facts_from_hf_config(config, model_id="odd").family == "custom"


def test_config_missing_hidden_size_when_resolved_then_value_error_names_it() -> None:
    config = _llama_config()
    del config["hidden_size"]

    with pytest.raises(ValueError, match="hidden_size"):
        facts_from_hf_config(config, model_id="broken")


@pytest.mark.parametrize(
    "key", ["num_hidden_layers", "num_attention_heads", "vocab_size", "max_position_embeddings"]
)
def test_config_missing_a_required_key_when_resolved_then_value_error_names_it(key: str) -> None:
    config = _llama_config()
    del config[key]

    with pytest.raises(ValueError, match=key):
        facts_from_hf_config(config, model_id="broken")


def test_config_with_non_integer_size_when_resolved_then_value_error_names_it() -> None:
    config = {**_llama_config(), "intermediate_size": "big"}

    with pytest.raises(ValueError, match="intermediate_size"):
        facts_from_hf_config(config, model_id="broken")


def test_config_with_indivisible_width_and_no_head_dim_when_resolved_then_value_error() -> None:
    config = {**_llama_config(), "hidden_size": 4000, "num_attention_heads": 48}

    with pytest.raises(ValueError, match="head_dim"):
        facts_from_hf_config(config, model_id="broken")
