"""The facts about a base model that the estimates need."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Family = Literal["llama", "mistral", "qwen", "phi", "gemma", "deepseek", "custom"]
Modality = Literal["text", "vision"]


class ModelArchitecture(BaseModel):
    """Transformer dimensions, as a model's config.json states them."""

    model_config = ConfigDict(frozen=True)

    num_layers: Annotated[int, Field(ge=1, description="Decoder layers (num_hidden_layers).")]
    hidden_size: Annotated[int, Field(ge=1, description="Model width (hidden_size).")]
    num_attention_heads: Annotated[int, Field(ge=1, description="Query heads.")]
    num_key_value_heads: Annotated[int, Field(ge=1, description="Key/value heads (GQA).")]
    head_dim: Annotated[int, Field(ge=1, description="Width of one attention head.")]
    intermediate_size: Annotated[int, Field(ge=1, description="MLP width (per expert for MoE).")]
    vocab_size: Annotated[int, Field(ge=1, description="Tokenizer vocabulary size.")]
    context_length: Annotated[
        int, Field(ge=1, description="Maximum positions (max_position_embeddings).")
    ]
    num_experts: Annotated[int, Field(ge=1, description="MLP experts per layer; 1 when dense.")] = 1
    experts_per_token: Annotated[
        int, Field(ge=1, description="Experts routed per token; 1 when dense.")
    ] = 1
    tie_word_embeddings: Annotated[
        bool, Field(description="Whether the output head shares the input embedding.")
    ] = False


class BaseModelInfo(BaseModel):
    """One base model a job can fine-tune."""

    model_config = ConfigDict(frozen=True)

    id: Annotated[str, Field(description="Stable slug, e.g. 'llama-3.1-8b-instruct'.")]
    name: Annotated[str, Field(description="Human-readable name.")]
    family: Annotated[Family, Field(description="Model family.")]
    hf_repo: Annotated[str, Field(description="Hugging Face repository id.")]
    num_parameters: Annotated[int, Field(ge=1, description="Total parameter count.")]
    architecture: Annotated[ModelArchitecture, Field(description="Architecture facts.")]
    modality: Annotated[Modality, Field(description="Inputs the model takes.")] = "text"
    gated: Annotated[
        bool, Field(description="Whether the repository requires accepting a license.")
    ] = False
    license: Annotated[str, Field(description="License identifier.")]
    best_for: Annotated[str, Field(description="What the model is good at.")] = ""

    @property
    def parameters_b(self) -> float:
        return self.num_parameters / 1e9

    @property
    def active_parameters(self) -> int:
        """Parameters used per token: all of them, except the unrouted experts of a MoE."""
        arch = self.architecture
        if arch.num_experts == 1:
            return self.num_parameters
        expert_params = 3 * arch.hidden_size * arch.intermediate_size * arch.num_layers
        idle_experts = arch.num_experts - arch.experts_per_token
        return self.num_parameters - idle_experts * expert_params
