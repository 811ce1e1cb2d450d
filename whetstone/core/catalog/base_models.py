"""The base models a job can fine-tune, with the facts the estimates need.

Architecture numbers are copied from each repository's config.json (for vision models: the text
decoder's ``text_config``). ``num_parameters`` is the total count of the released weights,
vision encoder included for vision models.
"""

from __future__ import annotations

from whetstone.core.catalog.model_facts import (
    BaseModelInfo,
    Family,
    Modality,
    ModelArchitecture,
)

__all__ = ["BASE_MODELS", "BASE_MODELS_BY_ID", "get_base_model"]


def _arch(
    layers: int,
    hidden: int,
    heads: int,
    kv_heads: int,
    ffn: int,
    vocab: int,
    context: int,
    *,
    head_dim: int | None = None,
    tied: bool = False,
    experts: int = 1,
    experts_per_token: int = 1,
) -> ModelArchitecture:
    """Architecture from config.json: num_hidden_layers, hidden_size, num_attention_heads,
    num_key_value_heads, intermediate_size, vocab_size, max_position_embeddings."""
    return ModelArchitecture(
        num_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim if head_dim is not None else hidden // heads,
        intermediate_size=ffn,
        vocab_size=vocab,
        context_length=context,
        num_experts=experts,
        experts_per_token=experts_per_token,
        tie_word_embeddings=tied,
    )


def _with_context(arch: ModelArchitecture, context: int) -> ModelArchitecture:
    return arch.model_copy(update={"context_length": context})


def _model(
    model_id: str,
    name: str,
    family: Family,
    hf_repo: str,
    num_parameters: int,
    arch: ModelArchitecture,
    *,
    license: str,
    gated: bool,
    best_for: str,
    modality: Modality = "text",
) -> BaseModelInfo:
    return BaseModelInfo(
        id=model_id,
        name=name,
        family=family,
        hf_repo=hf_repo,
        num_parameters=num_parameters,
        architecture=arch,
        modality=modality,
        gated=gated,
        license=license,
        best_for=best_for,
    )


# The tables below are laid out by hand; keep the formatter away from them.
# fmt: off

# Architectures shared by several entries.  layers hidden heads kv  ffn  vocab  context
_LLAMA3_8B = _arch(32, 4096, 32, 8, 14_336, 128_256, 131_072)
_LLAMA3_70B = _arch(80, 8192, 64, 8, 28_672, 128_256, 131_072)
_QWEN25_7B = _arch(28, 3584, 28, 4, 18_944, 152_064, 32_768)
_QWEN25_14B = _arch(48, 5120, 40, 8, 13_824, 152_064, 32_768)
_QWEN25_32B = _arch(64, 5120, 40, 8, 27_648, 152_064, 32_768)
_GEMMA_7B = _arch(28, 3072, 16, 16, 24_576, 256_000, 8_192, head_dim=256, tied=True)


_LLAMA: tuple[BaseModelInfo, ...] = (
    _model(
        "llama-3.3-70b-instruct", "Llama 3.3 70B Instruct", "llama",
        "meta-llama/Llama-3.3-70B-Instruct", 70_553_706_496, _LLAMA3_70B,
        license="llama3.3", gated=True,
        best_for="Strongest open general assistant; long context, multilingual, tool use.",
    ),
    _model(
        "llama-3.2-1b-instruct", "Llama 3.2 1B Instruct", "llama",
        "meta-llama/Llama-3.2-1B-Instruct", 1_235_814_400,
        _arch(16, 2048, 32, 8, 8_192, 128_256, 131_072, tied=True),
        license="llama3.2", gated=True,
        best_for="Tiny on-device assistant, classification and fast experiments.",
    ),
    _model(
        "llama-3.2-3b-instruct", "Llama 3.2 3B Instruct", "llama",
        "meta-llama/Llama-3.2-3B-Instruct", 3_212_749_824,
        _arch(28, 3072, 24, 8, 8_192, 128_256, 131_072, tied=True),
        license="llama3.2", gated=True,
        best_for="Small assistant for summarisation and edge deployment.",
    ),
    _model(
        "llama-3.2-11b-vision-instruct", "Llama 3.2 11B Vision Instruct", "llama",
        "meta-llama/Llama-3.2-11B-Vision-Instruct", 10_670_220_835,
        _arch(40, 4096, 32, 8, 14_336, 128_256, 131_072),
        license="llama3.2", gated=True, modality="vision",
        best_for="Image understanding: captioning, visual QA, document and chart reading.",
    ),
    _model(
        "llama-3.2-90b-vision-instruct", "Llama 3.2 90B Vision Instruct", "llama",
        "meta-llama/Llama-3.2-90B-Vision-Instruct", 88_593_355_323,
        _arch(100, 8192, 64, 8, 28_672, 128_256, 131_072),
        license="llama3.2", gated=True, modality="vision",
        best_for="Highest-quality open visual reasoning over images and documents.",
    ),
    _model(
        "llama-3.1-8b-instruct", "Llama 3.1 8B Instruct", "llama",
        "meta-llama/Llama-3.1-8B-Instruct", 8_030_261_248, _LLAMA3_8B,
        license="llama3.1", gated=True,
        best_for="All-round assistant; the default choice for most fine-tunes.",
    ),
    _model(
        "llama-3.1-70b-instruct", "Llama 3.1 70B Instruct", "llama",
        "meta-llama/Llama-3.1-70B-Instruct", 70_553_706_496, _LLAMA3_70B,
        license="llama3.1", gated=True,
        best_for="Large general assistant for complex reasoning and long documents.",
    ),
    _model(
        "codellama-7b-instruct", "CodeLlama 7B Instruct", "llama",
        "codellama/CodeLlama-7b-Instruct-hf", 6_738_546_688,
        _arch(32, 4096, 32, 32, 11_008, 32_016, 16_384),
        license="llama2", gated=False,
        best_for="Code completion and explanation on a single small GPU.",
    ),
    _model(
        "codellama-13b-instruct", "CodeLlama 13B Instruct", "llama",
        "codellama/CodeLlama-13b-Instruct-hf", 13_016_028_160,
        _arch(40, 5120, 40, 40, 13_824, 32_016, 16_384),
        license="llama2", gated=False,
        best_for="Code generation and infilling with more headroom than 7B.",
    ),
    _model(
        "codellama-34b-instruct", "CodeLlama 34B Instruct", "llama",
        "codellama/CodeLlama-34b-Instruct-hf", 33_743_970_304,
        _arch(48, 8192, 64, 8, 22_016, 32_000, 16_384),
        license="llama2", gated=False,
        best_for="Stronger code generation and repository-level reasoning.",
    ),
    _model(
        "codellama-70b-instruct", "CodeLlama 70B Instruct", "llama",
        "codellama/CodeLlama-70b-Instruct-hf", 68_976_910_336,
        _arch(80, 8192, 64, 8, 28_672, 32_016, 4_096),
        license="llama2", gated=False,
        best_for="Largest CodeLlama; hardest code synthesis tasks.",
    ),
)

_MISTRAL: tuple[BaseModelInfo, ...] = (
    _model(
        "mistral-7b-instruct-v0.3", "Mistral 7B Instruct v0.3", "mistral",
        "mistralai/Mistral-7B-Instruct-v0.3", 7_248_023_552,
        _arch(32, 4096, 32, 8, 14_336, 32_768, 32_768),
        license="apache-2.0", gated=True,
        best_for="Efficient general assistant with function calling.",
    ),
    _model(
        "mixtral-8x7b-instruct-v0.1", "Mixtral 8x7B Instruct v0.1", "mistral",
        "mistralai/Mixtral-8x7B-Instruct-v0.1", 46_702_792_704,
        _arch(32, 4096, 32, 8, 14_336, 32_000, 32_768, experts=8, experts_per_token=2),
        license="apache-2.0", gated=True,
        best_for="Sparse mixture of experts: 70B-class quality at 13B active cost.",
    ),
    _model(
        "mistral-nemo-instruct-2407", "Mistral Nemo Instruct 12B", "mistral",
        "mistralai/Mistral-Nemo-Instruct-2407", 12_247_782_400,
        _arch(40, 5120, 32, 8, 14_336, 131_072, 1_024_000, head_dim=128),
        license="apache-2.0", gated=True,
        best_for="Multilingual assistant with a 128k context window.",
    ),
    _model(
        "codestral-22b-v0.1", "Codestral 22B v0.1", "mistral",
        "mistralai/Codestral-22B-v0.1", 22_247_282_688,
        _arch(56, 6144, 48, 8, 16_384, 32_768, 32_768),
        license="mnpl", gated=True,
        best_for="Code generation and fill-in-the-middle across 80+ languages.",
    ),
)

_QWEN: tuple[BaseModelInfo, ...] = (
    _model(
        "qwen2.5-0.5b-instruct", "Qwen2.5 0.5B Instruct", "qwen",
        "Qwen/Qwen2.5-0.5B-Instruct", 494_032_768,
        _arch(24, 896, 14, 2, 4_864, 151_936, 32_768, tied=True),
        license="apache-2.0", gated=False,
        best_for="Smallest model: smoke tests, routing and simple extraction.",
    ),
    _model(
        "qwen2.5-1.5b-instruct", "Qwen2.5 1.5B Instruct", "qwen",
        "Qwen/Qwen2.5-1.5B-Instruct", 1_543_714_304,
        _arch(28, 1536, 12, 2, 8_960, 151_936, 32_768, tied=True),
        license="apache-2.0", gated=False,
        best_for="Cheap fine-tunes for classification and structured output.",
    ),
    _model(
        "qwen2.5-3b-instruct", "Qwen2.5 3B Instruct", "qwen",
        "Qwen/Qwen2.5-3B-Instruct", 3_085_938_688,
        _arch(36, 2048, 16, 2, 11_008, 151_936, 32_768, tied=True),
        license="qwen-research", gated=False,
        best_for="Small multilingual assistant (research licence).",
    ),
    _model(
        "qwen2.5-7b-instruct", "Qwen2.5 7B Instruct", "qwen",
        "Qwen/Qwen2.5-7B-Instruct", 7_615_616_512, _QWEN25_7B,
        license="apache-2.0", gated=False,
        best_for="Strong multilingual 7B for chat, JSON output and maths.",
    ),
    _model(
        "qwen2.5-14b-instruct", "Qwen2.5 14B Instruct", "qwen",
        "Qwen/Qwen2.5-14B-Instruct", 14_770_033_664, _QWEN25_14B,
        license="apache-2.0", gated=False,
        best_for="Mid-size assistant with good reasoning per GPU hour.",
    ),
    _model(
        "qwen2.5-32b-instruct", "Qwen2.5 32B Instruct", "qwen",
        "Qwen/Qwen2.5-32B-Instruct", 32_763_876_352, _QWEN25_32B,
        license="apache-2.0", gated=False,
        best_for="Near-70B quality that still fits a single 80 GB GPU with QLoRA.",
    ),
    _model(
        "qwen2.5-72b-instruct", "Qwen2.5 72B Instruct", "qwen",
        "Qwen/Qwen2.5-72B-Instruct", 72_706_203_648,
        _arch(80, 8192, 64, 8, 29_568, 152_064, 32_768),
        license="qwen", gated=False,
        best_for="Flagship Qwen for demanding reasoning, coding and multilingual work.",
    ),
    _model(
        "qwen2.5-coder-7b-instruct", "Qwen2.5-Coder 7B Instruct", "qwen",
        "Qwen/Qwen2.5-Coder-7B-Instruct", 7_615_616_512, _QWEN25_7B,
        license="apache-2.0", gated=False,
        best_for="Code generation, repair and review at 7B.",
    ),
    _model(
        "qwen2.5-coder-32b-instruct", "Qwen2.5-Coder 32B Instruct", "qwen",
        "Qwen/Qwen2.5-Coder-32B-Instruct", 32_763_876_352, _QWEN25_32B,
        license="apache-2.0", gated=False,
        best_for="Best open code model of its size; agentic coding.",
    ),
    _model(
        "qwen2.5-vl-7b-instruct", "Qwen2.5-VL 7B Instruct", "qwen",
        "Qwen/Qwen2.5-VL-7B-Instruct", 8_292_166_656,
        _with_context(_QWEN25_7B, 128_000),
        license="apache-2.0", gated=False, modality="vision",
        best_for="Documents, screenshots, charts and OCR-heavy visual tasks.",
    ),
)

_PHI: tuple[BaseModelInfo, ...] = (
    _model(
        "phi-3.5-mini-instruct", "Phi-3.5 mini instruct", "phi",
        "microsoft/Phi-3.5-mini-instruct", 3_821_079_552,
        _arch(32, 3072, 32, 32, 8_192, 32_064, 131_072),
        license="mit", gated=False,
        best_for="Small reasoning model with 128k context.",
    ),
    _model(
        "phi-3-medium-4k-instruct", "Phi-3 medium 4k instruct", "phi",
        "microsoft/Phi-3-medium-4k-instruct", 13_960_238_080,
        _arch(40, 5120, 40, 10, 17_920, 32_064, 4_096),
        license="mit", gated=False,
        best_for="Reasoning-dense 14B for short-context tasks.",
    ),
    _model(
        "phi-4", "Phi-4", "phi",
        "microsoft/phi-4", 14_659_507_200,
        _arch(40, 5120, 40, 10, 17_920, 100_352, 16_384),
        license="mit", gated=False,
        best_for="Maths and reasoning punching well above its 14B size.",
    ),
)

_GEMMA: tuple[BaseModelInfo, ...] = (
    _model(
        "gemma-2-9b-it", "Gemma 2 9B it", "gemma",
        "google/gemma-2-9b-it", 9_241_705_984,
        _arch(42, 3584, 16, 8, 14_336, 256_000, 8_192, head_dim=256, tied=True),
        license="gemma", gated=True,
        best_for="Well-rounded 9B assistant with a large multilingual vocabulary.",
    ),
    _model(
        "gemma-2-27b-it", "Gemma 2 27B it", "gemma",
        "google/gemma-2-27b-it", 27_227_128_320,
        _arch(46, 4608, 32, 16, 36_864, 256_000, 8_192, head_dim=128, tied=True),
        license="gemma", gated=True,
        best_for="High-quality assistant between 9B and 70B class.",
    ),
    _model(
        "gemma-7b-it", "Gemma 7B it", "gemma",
        "google/gemma-7b-it", 8_537_680_896, _GEMMA_7B,
        license="gemma", gated=True,
        best_for="First-generation Gemma chat model.",
    ),
    _model(
        "codegemma-7b-it", "CodeGemma 7B it", "gemma",
        "google/codegemma-7b-it", 8_537_680_896, _GEMMA_7B,
        license="gemma", gated=True,
        best_for="Code chat and generation on the Gemma architecture.",
    ),
)

_DEEPSEEK: tuple[BaseModelInfo, ...] = (
    _model(
        "deepseek-r1-distill-qwen-1.5b", "DeepSeek-R1-Distill-Qwen 1.5B", "deepseek",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 1_777_088_000,
        _arch(28, 1536, 12, 2, 8_960, 151_936, 131_072),
        license="mit", gated=False,
        best_for="Tiny chain-of-thought reasoner for maths.",
    ),
    _model(
        "deepseek-r1-distill-qwen-7b", "DeepSeek-R1-Distill-Qwen 7B", "deepseek",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 7_615_616_512,
        _with_context(_QWEN25_7B, 131_072),
        license="mit", gated=False,
        best_for="Step-by-step reasoning for maths and science at 7B.",
    ),
    _model(
        "deepseek-r1-distill-qwen-14b", "DeepSeek-R1-Distill-Qwen 14B", "deepseek",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", 14_770_033_664,
        _with_context(_QWEN25_14B, 131_072),
        license="mit", gated=False,
        best_for="Long chain-of-thought reasoning at mid size.",
    ),
    _model(
        "deepseek-r1-distill-qwen-32b", "DeepSeek-R1-Distill-Qwen 32B", "deepseek",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", 32_763_876_352,
        _with_context(_QWEN25_32B, 131_072),
        license="mit", gated=False,
        best_for="Strongest distilled reasoner that fits one large GPU.",
    ),
    _model(
        "deepseek-r1-distill-llama-8b", "DeepSeek-R1-Distill-Llama 8B", "deepseek",
        "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", 8_030_261_248, _LLAMA3_8B,
        license="mit", gated=False,
        best_for="R1-style reasoning on the Llama 3.1 8B base.",
    ),
    _model(
        "deepseek-r1-distill-llama-70b", "DeepSeek-R1-Distill-Llama 70B", "deepseek",
        "deepseek-ai/DeepSeek-R1-Distill-Llama-70B", 70_553_706_496, _LLAMA3_70B,
        license="mit", gated=False,
        best_for="Top-tier open reasoning for maths, code and planning.",
    ),
    _model(
        "deepseek-coder-6.7b-instruct", "DeepSeek Coder 6.7B instruct", "deepseek",
        "deepseek-ai/deepseek-coder-6.7b-instruct", 6_740_512_768,
        _arch(32, 4096, 32, 32, 11_008, 32_256, 16_384),
        license="deepseek", gated=False,
        best_for="Project-level code completion and infilling.",
    ),
    _model(
        "deepseek-math-7b-instruct", "DeepSeek Math 7B instruct", "deepseek",
        "deepseek-ai/deepseek-math-7b-instruct", 6_910_365_696,
        _arch(30, 4096, 32, 32, 11_008, 102_400, 4_096),
        license="deepseek", gated=False,
        best_for="Competition maths and step-by-step solutions.",
    ),
)

# fmt: on

BASE_MODELS: tuple[BaseModelInfo, ...] = _LLAMA + _MISTRAL + _QWEN + _PHI + _GEMMA + _DEEPSEEK

BASE_MODELS_BY_ID: dict[str, BaseModelInfo] = {model.id: model for model in BASE_MODELS}

if len(BASE_MODELS_BY_ID) != len(BASE_MODELS):  # pragma: no cover - guards edits to the table
    raise RuntimeError("BASE_MODELS contains a duplicate id")


def get_base_model(model_id: str) -> BaseModelInfo:
    """The catalog entry for ``model_id``; ``KeyError`` when the catalog has no such model."""
    try:
        return BASE_MODELS_BY_ID[model_id]
    except KeyError:
        raise KeyError(f"unknown base model {model_id!r}") from None
