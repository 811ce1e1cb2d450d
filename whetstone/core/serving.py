"""Can a trained model be served as it is? Checks that run before any server starts.

A model that trains well can still fail to serve: vLLM refuses adapters above its
`max_lora_rank`, serves LoRA only on the linear layers it knows, and ignores
`modules_to_save`; a chat template that differs from the one used in training
makes every answer drift. These checks read the artifacts' facts (adapter config,
chat templates) and say what to change; the golden check compares the greedy
answer of the saved model with the endpoint's once the server runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from whetstone.core.deferred import DeferredModel

# vLLM's default --max-lora-rank, and the values it accepts for it.
DEFAULT_MAX_LORA_RANK = 16
MAX_LORA_RANK_LIMIT = 512
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)

# The linear layers vLLM serves LoRA on (names as in HF checkpoints of Llama, Qwen,
# Mistral, Gemma; vLLM fuses q/k/v and gate/up itself).
SERVABLE_TARGET_MODULES = frozenset(
    {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "qkv_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
        "gate_up_proj",
    }
)
_EMBEDDING_MODULES = frozenset({"lm_head", "embed_tokens", "wte", "embed_out"})

GOLDEN_MESSAGES: tuple[dict[str, str], ...] = (
    {"role": "user", "content": "What is the capital of France?"},
)
GOLDEN_MAX_TOKENS = 16


class ServerRefused(ValueError):
    """A model's server refused a request: its HTTP status and its body (OpenAI-shaped from
    vLLM and from our own server), which the chat route passes on as they are."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"the model server answered {status}: {body[:500]}")
        self.status, self.body = status, body


class ServingLimits(DeferredModel):
    """What the serving engine accepts."""

    model_config = ConfigDict(frozen=True)

    max_lora_rank: Annotated[
        int,
        Field(ge=1, le=MAX_LORA_RANK_LIMIT, description="Largest adapter rank the server loads."),
    ] = DEFAULT_MAX_LORA_RANK
    target_modules: Annotated[
        frozenset[str], Field(description="Module names the server applies LoRA to.")
    ] = SERVABLE_TARGET_MODULES
    adapter_types: Annotated[
        frozenset[str] | None,
        Field(description="PEFT adapter types the server loads (peft_type); None: any."),
    ] = None


def vllm_limits(max_lora_rank: int) -> ServingLimits:
    """What vLLM serves: LoRA adapters only (no prompt tuning), on the projections it knows."""
    return ServingLimits(max_lora_rank=max_lora_rank, adapter_types=frozenset({"LORA"}))


def vllm_lora_rank(max_lora_rank: int) -> int:
    """The smallest value vLLM's --max-lora-rank accepts that is at least `max_lora_rank`."""
    return next((r for r in VLLM_LORA_RANKS if r >= max_lora_rank), MAX_LORA_RANK_LIMIT)


class GoldenRecord(DeferredModel):
    """The saved model's greedy answer to the golden prompt, which the trainer records under
    its output (core.layout's OutputNames.GOLDEN): the aws runtime cannot load the model to
    compute it, having no torch."""

    messages: Annotated[list[dict[str, str]], Field(description="The prompt asked.")]
    max_tokens: Annotated[int, Field(ge=1, description="Tokens generated at most.")]
    answer: Annotated[str, Field(description="The saved model's greedy answer.")]


class ModelFacts(DeferredModel):
    """What the artifacts say about the trained model."""

    adapter_config: Annotated[
        dict[str, Any] | None,
        Field(description="adapter_config.json of an adapter; None for a full model."),
    ] = None
    chat_template: Annotated[
        str | None, Field(description="The chat template saved with the model.")
    ] = None
    base_chat_template: Annotated[
        str | None,
        Field(description="The chat template of the base (the tokenizer used in training)."),
    ] = None
    base_known: Annotated[
        bool, Field(description="Whether the base's tokenizer could be read (a local base).")
    ] = False


class ServingProblem(DeferredModel):
    """One reason the model would not serve as trained, and what to change."""

    code: Annotated[str, Field(description="Stable machine-readable code.")]
    message: Annotated[str, Field(description="What is wrong and what to change.")]
    severity: Annotated[
        Literal["error", "warning"], Field(description="Errors block the deployment.")
    ] = "error"


def _module_names(target: Any) -> list[str] | None:
    if isinstance(target, str):
        return None  # a regex: peft matches it against the model, we cannot here
    return sorted(str(name) for name in target or [])


def _adapter_problems(config: dict[str, Any], limits: ServingLimits) -> list[ServingProblem]:
    problems: list[ServingProblem] = []
    peft_type = str(config.get("peft_type") or "LORA")
    if limits.adapter_types is not None and peft_type not in limits.adapter_types:
        return [
            ServingProblem(
                code="adapter_type_unsupported",
                message=f"the model is a {peft_type} adapter and the server loads "
                f"{', '.join(sorted(limits.adapter_types))} adapters only; train with LoRA or "
                "QLoRA (or full fine-tuning) to deploy here, or serve it with the local runtime",
            )
        ]
    patterns = config.get("rank_pattern") or {}
    rank = max([int(config.get("r", 0)), *(int(r) for r in patterns.values())])
    if rank > limits.max_lora_rank:
        fitting = next((r for r in VLLM_LORA_RANKS if r >= rank), MAX_LORA_RANK_LIMIT)
        problems.append(
            ServingProblem(
                code="lora_rank_too_high",
                message=f"the adapter has rank r={rank} and the server loads at most "
                f"max_lora_rank={limits.max_lora_rank}; retrain with lora.r <= "
                f"{limits.max_lora_rank}, or deploy with max_lora_rank={fitting}"
                + (
                    ""
                    if rank <= MAX_LORA_RANK_LIMIT
                    else f" (no server takes more than {MAX_LORA_RANK_LIMIT}: retrain)"
                ),
            )
        )
    names = _module_names(config.get("target_modules"))
    if names is None:
        problems.append(
            ServingProblem(
                code="target_modules_pattern",
                message="the adapter's target_modules is a pattern, not a list of names; the "
                "server's support for it cannot be checked before it loads",
                severity="warning",
            )
        )
    else:
        leaves = {name.rsplit(".", 1)[-1] for name in names}
        embedding = sorted(leaves & _EMBEDDING_MODULES)
        unknown = sorted(leaves - limits.target_modules - _EMBEDDING_MODULES)
        if embedding:
            problems.append(
                ServingProblem(
                    code="lora_on_embeddings",
                    message=f"the adapter puts LoRA on {', '.join(embedding)}, which the server "
                    "does not serve; retrain with lora.target_modules limited to attention and "
                    "MLP projections (or 'all-linear')",
                )
            )
        if unknown:
            problems.append(
                ServingProblem(
                    code="target_modules_unsupported",
                    message=f"the server applies LoRA to {', '.join(sorted(limits.target_modules))}"
                    f" only, and the adapter targets {', '.join(unknown)}; retrain with "
                    "lora.target_modules among those",
                )
            )
    saved = config.get("modules_to_save") or []
    if saved:
        problems.append(
            ServingProblem(
                code="modules_to_save",
                message=f"the adapter carries fully trained modules ({', '.join(map(str, saved))})"
                " that a LoRA server ignores; retrain without modules_to_save, or merge the "
                "adapter and serve the full model",
            )
        )
    if config.get("use_dora"):
        problems.append(
            ServingProblem(
                code="dora_unsupported",
                message="the adapter is a DoRA adapter, which the server does not load; "
                "retrain without use_dora, or merge it and serve the full model",
            )
        )
    return problems


def _template_problems(facts: ModelFacts) -> list[ServingProblem]:
    if not facts.chat_template:
        return [
            ServingProblem(
                code="chat_template_missing",
                message="the artifacts hold no chat template (chat_template.jinja or "
                "tokenizer_config.json); chat requests would be formatted unlike training: "
                "save the tokenizer with its chat template next to the model",
            )
        ]
    if facts.base_known and facts.chat_template.strip() != (facts.base_chat_template or "").strip():
        return [
            ServingProblem(
                code="chat_template_changed",
                message="the chat template saved with the model differs from the base "
                "tokenizer's used in training; the server applies the saved one, so answers "
                "would drift: save the training tokenizer's template with the model",
            )
        ]
    return []


def check_servable(facts: ModelFacts, limits: ServingLimits) -> list[ServingProblem]:
    """Every problem that would make the model serve differently from how it was trained."""
    problems: list[ServingProblem] = []
    if facts.adapter_config is not None:
        problems += _adapter_problems(facts.adapter_config, limits)
    problems += _template_problems(facts)
    return problems


def blocking(problems: list[ServingProblem]) -> list[ServingProblem]:
    return [p for p in problems if p.severity == "error"]


def check_golden(expected: str, served: str) -> ServingProblem | None:
    """The endpoint must answer the golden prompt as the saved model does, greedily."""
    if expected == served:
        return None
    return ServingProblem(
        code="golden_mismatch",
        message=f"asked {GOLDEN_MESSAGES[-1]['content']!r} greedily, the saved model answers "
        f"{expected!r} and the endpoint {served!r}; the server formats or generates unlike "
        "the trained model: check that the chat template, the special tokens (eos) and the "
        "generation config saved with the model are those used in training",
    )
