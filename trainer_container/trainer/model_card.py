"""The model card (README.md) saved with the trained adapter or model.

peft and transformers save an empty template; a downloaded model should say what it is,
how it was trained, on what data, how well it did and how to load it.
"""

from __future__ import annotations

from typing import Any

from whetstone.core.spec import LORA_METHODS, JobSpec, Method

CARD_NAME = "README.md"  # the file name the Hugging Face Hub and the libraries read


def render_model_card(
    *,
    job_id: str,
    spec: JobSpec,
    base_model: str,
    adapter: bool,
    dataset: dict[str, Any],
    runtime: dict[str, Any],
    history: list[dict[str, Any]],
    results: dict[str, Any],
) -> str:
    """The card's Markdown, with the YAML front matter the Hugging Face Hub reads."""
    kind = "adapter" if adapter else "model"
    lines = [
        "---",
        f"base_model: {base_model}",
        f"library_name: {'peft' if adapter else 'transformers'}",
        f"tags: [whetstone, {spec.method.value}]",
        "---",
        "",
        f"# {spec.method.value} {kind} for {base_model}",
        "",
        f"Fine-tuned by Whetstone job `{job_id}`.",
        "",
        "## Training",
        "",
        *_table(_settings(spec, runtime)),
        "",
        "## Dataset",
        "",
        *_table(_dataset_rows(dataset)),
        "",
        "## Metrics",
        "",
        *_table(_metric_rows(history, results)),
        "",
        *_evaluation(results),
        "## How to load it",
        "",
        "```python",
        *_loading(adapter),
        "```",
        "",
    ]
    return "\n".join(lines)


def _table(rows: list[tuple[str, object]]) -> list[str]:
    return ["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]


def _settings(spec: JobSpec, runtime: dict[str, Any]) -> list[tuple[str, object]]:
    training = spec.training
    rows: list[tuple[str, object]] = [("method", spec.method.value)]
    if spec.method is Method.DPO:
        rows += [("dpo tuning", spec.dpo.tuning), ("dpo beta", spec.dpo.beta)]
    if spec.tuning_method in LORA_METHODS:
        lora = spec.lora
        rows += [
            ("lora r / alpha / dropout", f"{lora.r} / {lora.alpha} / {lora.dropout}"),
            ("target modules", ", ".join(lora.target_modules)),
        ]
    if spec.tuning_method is Method.QLORA:
        quant = spec.quantization
        rows.append(("quantization", f"{quant.bits}-bit {quant.quant_type}"))
    if spec.method is Method.PROMPT_TUNING:
        rows.append(("virtual tokens", spec.prompt_tuning.num_virtual_tokens))
    rows += [
        ("epochs", training.epochs),
        ("learning rate", training.learning_rate),
        (
            "batch size x accumulation",
            f"{training.batch_size} x {training.gradient_accumulation_steps}",
        ),
        ("warmup steps", runtime.get("warmup_steps", training.warmup_steps)),
        ("max sequence length", spec.sequence_length),
        ("precision", runtime.get("precision", "-")),
        ("device", runtime.get("device", "-")),
        ("seed", spec.advanced.seed),
    ]
    return rows


def _dataset_rows(dataset: dict[str, Any]) -> list[tuple[str, object]]:
    counts = dataset.get("counts") or {}
    rows: list[tuple[str, object]] = [("source sha256", f"`{dataset.get('source_sha256')}`")]
    rows += [(f"{split} examples", count) for split, count in counts.items()]
    rows.append(("split seed", dataset.get("split_seed")))
    return rows


def _metric_rows(
    history: list[dict[str, Any]], results: dict[str, Any]
) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [
        ("steps", results.get("global_step")),
        ("epochs", _rounded(results.get("epoch"))),
    ]
    for name in ("loss", "eval_loss"):
        last = next((row for row in reversed(history) if row.get(name) is not None), None)
        if last is not None:
            rows.append((f"final {name}", f"{_rounded(last[name])} (step {last.get('step')})"))
    if results.get("best_eval_loss") is not None:
        rows.append(("best eval_loss", _rounded(results["best_eval_loss"])))
    return rows


def _evaluation(results: dict[str, Any]) -> list[str]:
    if results.get("test_loss") is None:
        return []
    rows = [
        ("test loss", _rounded(results["test_loss"])),
        ("test perplexity", _rounded(results.get("test_perplexity"))),
    ]
    return ["## Evaluation", "", "On the held-out test split:", "", *_table(rows), ""]


def _loading(adapter: bool) -> list[str]:
    if adapter:
        return [
            "from peft import AutoPeftModelForCausalLM",
            "from transformers import AutoTokenizer",
            "",
            'model = AutoPeftModelForCausalLM.from_pretrained("path/to/this/folder")',
            'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
        ]
    return [
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")',
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
    ]


def _rounded(value: Any) -> object:
    return round(value, 4) if isinstance(value, float) else value
