"""The job the end-to-end tests run on a tiny model: a LoRA config and a dataset."""

from __future__ import annotations

import json
from typing import Any


def lora_config(
    base_model: str, *, epochs: int = 1, save_steps: int = 10, batch_size: int = 4
) -> dict[str, Any]:
    """A job spec that trains `base_model` quickly on CPU, evaluating and checkpointing every
    `save_steps` steps."""
    return {
        "base_model": base_model,
        "method": "lora",
        "lora": {"target_modules": "all-linear"},
        "dataset": {"cutoff_length": 128},
        "training": {
            "epochs": epochs,
            "batch_size": batch_size,
            "gradient_accumulation_steps": 1,
            "warmup_steps": 0,
            "learning_rate": 1e-3,
            "max_sequence_length": 128,
        },
        "advanced": {
            "logging_steps": 2,
            "eval_steps": save_steps,
            "save_steps": save_steps,
            "dataloader_workers": 0,
        },
        "hardware": {"gpu_type": "nvidia-l4"},
        "evaluation": {"max_new_tokens": 16},
    }


def repeat_dataset(count: int) -> bytes:
    """`count` alpaca rows asking to repeat a word, as JSONL."""
    rows = [
        {"instruction": "Repeat the word", "input": f"w{i}", "output": f"w{i} w{i}"}
        for i in range(count)
    ]
    return "\n".join(json.dumps(row) for row in rows).encode()
