"""Turn a Hugging Face config.json (already parsed into a dict) into catalog facts.

Pure functions: the caller reads the file; nothing here touches disk, torch or transformers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from whetstone.core.catalog.model_facts import (
    BaseModelInfo,
    Family,
    Modality,
    ModelArchitecture,
)

__all__ = ["count_parameters", "facts_from_hf_config"]

_FAMILY_BY_MODEL_TYPE: dict[str, Family] = {
    "llama": "llama",
    "mllama": "llama",
    "mllama_text_model": "llama",
    "mistral": "mistral",
    "mixtral": "mistral",
    "qwen2": "qwen",
    "qwen2_moe": "qwen",
    "qwen3": "qwen",
    "qwen3_moe": "qwen",
    "qwen2_vl": "qwen",
    "qwen2_5_vl": "qwen",
    "phi3": "phi",
    "phi": "phi",
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "gemma3_text": "gemma",
}

# Transformers' own default for tie_word_embeddings when config.json leaves it out. Unknown
# model types count a separate output head, so an estimate errs on the side of more memory.
_TIED_BY_DEFAULT = frozenset({"gemma", "gemma2", "gemma3", "gemma3_text"})

# Canonical key first, then the names some older architectures use for the same fact.
_ALIASES: dict[str, tuple[str, ...]] = {
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_attention_heads": ("num_attention_heads", "n_head"),
    "intermediate_size": ("intermediate_size", "n_inner", "ffn_dim"),
    "vocab_size": ("vocab_size",),
    "max_position_embeddings": ("max_position_embeddings", "n_positions", "seq_length"),
}

_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts")


def count_parameters(arch: ModelArchitecture) -> int:
    """Parameters of a decoder-only transformer with these dimensions.

    Counts the input embedding, the output head when it is not tied, per layer the q/k/v/o
    projections (grouped-query attention), a gated MLP of ``3 * hidden * intermediate`` per
    expert, the router of a mixture of experts and two RMSNorms, plus the final norm. Biases,
    vision towers and other extras are left out, so real checkpoints can be slightly larger.
    """
    hidden = arch.hidden_size
    q_width = arch.num_attention_heads * arch.head_dim
    kv_width = arch.num_key_value_heads * arch.head_dim

    attention = hidden * q_width + 2 * hidden * kv_width + q_width * hidden
    mlp = arch.num_experts * 3 * hidden * arch.intermediate_size
    router = hidden * arch.num_experts if arch.num_experts > 1 else 0
    norms = 2 * hidden
    per_layer = attention + mlp + router + norms

    embedding = arch.vocab_size * hidden
    head = 0 if arch.tie_word_embeddings else arch.vocab_size * hidden
    return arch.num_layers * per_layer + embedding + head + hidden


def facts_from_hf_config(
    config: Mapping[str, Any],
    *,
    model_id: str,
    name: str | None = None,
    hf_repo: str | None = None,
) -> BaseModelInfo:
    """Build a catalog entry for a model that is not in the catalog, from its config.json.

    Vision configs with a nested ``text_config`` take the text decoder's facts from it, falling
    back to the top level for any key it lacks. Raises ``ValueError`` naming the missing or
    malformed key when the config does not state a fact the estimates need.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"config.json for {model_id!r} is not a JSON object")
    text = config.get("text_config")
    if text is not None and not isinstance(text, Mapping):
        raise ValueError(f"config.json for {model_id!r}: 'text_config' is not an object")
    reader = _ConfigReader(model_id, config, text)

    layers = reader.required("num_hidden_layers")
    hidden = reader.required("hidden_size")
    heads = reader.required("num_attention_heads")
    kv_heads = reader.optional("num_key_value_heads") or heads
    head_dim = reader.optional("head_dim")
    if head_dim is None:
        if hidden % heads:
            raise ValueError(
                f"config.json for {model_id!r} has no 'head_dim' and hidden_size {hidden} "
                f"is not divisible by num_attention_heads {heads}"
            )
        head_dim = hidden // heads

    experts = 1
    for key in _EXPERT_KEYS:
        value = reader.optional(key)
        if value is not None:
            experts = value
            break
    experts_per_token = 1
    ffn_key = "intermediate_size"
    if experts > 1:
        experts_per_token = reader.optional("num_experts_per_tok") or 1
        if reader.optional("moe_intermediate_size") is not None:
            ffn_key = "moe_intermediate_size"
    intermediate = reader.required(ffn_key)

    model_types = reader.model_types()
    tied = reader.flag("tie_word_embeddings")
    if tied is None:
        tied = any(model_type in _TIED_BY_DEFAULT for model_type in model_types)

    architecture = ModelArchitecture(
        num_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=intermediate,
        vocab_size=reader.required("vocab_size"),
        context_length=reader.required("max_position_embeddings"),
        num_experts=experts,
        experts_per_token=min(experts_per_token, experts),
        tie_word_embeddings=tied,
    )
    modality: Modality = "vision" if "vision_config" in config else "text"
    family: Family = next(
        (_FAMILY_BY_MODEL_TYPE[t] for t in model_types if t in _FAMILY_BY_MODEL_TYPE), "custom"
    )
    return BaseModelInfo(
        id=model_id,
        name=name or model_id,
        family=family,
        hf_repo=hf_repo or model_id,
        num_parameters=count_parameters(architecture),
        architecture=architecture,
        modality=modality,
        gated=False,
        license="unknown",
    )


class _ConfigReader:
    """Looks a key up in ``text_config`` first, then at the top level of config.json."""

    def __init__(
        self, model_id: str, config: Mapping[str, Any], text: Mapping[str, Any] | None
    ) -> None:
        self._model_id = model_id
        self._sources: tuple[Mapping[str, Any], ...] = (
            (text, config) if text is not None else (config,)
        )

    def _raw(self, key: str) -> Any:
        for source in self._sources:
            for alias in _ALIASES.get(key, (key,)):
                value = source.get(alias)
                if value is not None:
                    return value
        return None

    def optional(self, key: str) -> int | None:
        value = self._raw(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"config.json for {self._model_id!r}: {key!r} must be a positive integer, "
                f"got {value!r}"
            )
        return value

    def required(self, key: str) -> int:
        value = self.optional(key)
        if value is None:
            where = "'text_config' or the top level" if len(self._sources) > 1 else "the config"
            raise ValueError(
                f"config.json for {self._model_id!r} lacks {key!r} (looked in {where})"
            )
        return value

    def flag(self, key: str) -> bool | None:
        value = self._raw(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise ValueError(
                f"config.json for {self._model_id!r}: {key!r} must be true or false, got {value!r}"
            )
        return value

    def model_types(self) -> list[str]:
        return [
            value
            for source in reversed(self._sources)
            if isinstance(value := source.get("model_type"), str)
        ]
