"""A short training run on a tiny model, as the trainer tests and the throughput bench run
it: its job spec and its prepared dataset folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from whetstone.core.datasets.records import MANIFEST_NAME


def short_lora_spec(
    base_model: str | Path,
    *,
    rank: int = 8,
    learning_rate: float = 1e-3,
    batch_size: int = 8,
    sequence_length: int = 128,
) -> dict[str, Any]:
    """A LoRA job spec (all-linear, alpha twice the rank) sized for a quick run: one epoch,
    no evaluation, no checkpoints, a metrics report every step."""
    return {
        "base_model": str(base_model),
        "method": "lora",
        "lora": {"r": rank, "alpha": 2 * rank, "dropout": 0.0, "target_modules": ["all-linear"]},
        "dataset": {"cutoff_length": sequence_length},
        "training": {
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "epochs": 1,
            "gradient_accumulation_steps": 1,
            "warmup_steps": 0,
            "max_sequence_length": sequence_length,
        },
        "advanced": {
            "early_stopping": False,
            "eval_strategy": "no",
            "save_strategy": "no",
            "logging_steps": 1,
            "dataloader_workers": 0,
            "gradient_checkpointing": False,
        },
        "hardware": {"gpu_type": "nvidia-l4"},
    }


def write_chat_splits(
    folder: Path, splits: dict[str, list[dict[str, Any]]], *, seed: int, kind: str = "chat"
) -> Path:
    """Chat examples (or examples of another `kind`) as the trainer reads a prepared dataset:
    one JSONL file per split and the manifest that counts them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = {
        "format": "openai" if kind == "chat" else kind,
        "kind": kind,
        "counts": {name: len(rows) for name, rows in splits.items()},
        "sha256": "0" * 64,
        "seed": seed,
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    return folder
