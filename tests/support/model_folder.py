"""A local model folder: just the config.json the estimates read."""

from __future__ import annotations

import json
from pathlib import Path

TINY_LLAMA_CONFIG = {
    "model_type": "llama",
    "num_hidden_layers": 2,
    "hidden_size": 64,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "vocab_size": 512,
    "max_position_embeddings": 256,
}


def model_folder(folder: Path) -> str:
    """`folder`, holding a tiny model's config.json, as a path string."""
    (folder / "config.json").write_text(json.dumps(TINY_LLAMA_CONFIG))
    return str(folder)
