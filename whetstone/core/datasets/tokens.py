"""Token counting: a byte-based estimate by default, the model's own tokenizer when given.

`tokenizers` (and `transformers`, as a fallback) are imported only by
`load_token_counter`, never at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from whetstone.core.errors import InvalidInputError

BYTES_PER_TOKEN = 4
TokenCounter = Callable[[str], int]


def approximate_tokens(text: str) -> int:
    """About one token per 4 UTF-8 bytes: close for English BPE vocabularies."""
    size = len(text) if text.isascii() else len(text.encode())
    return (size + BYTES_PER_TOKEN - 1) // BYTES_PER_TOKEN


class ExactTokenCounter:
    """Counts with a model's tokenizer (no special tokens added)."""

    def __init__(self, tokenizer: Any, name: str) -> None:
        self._tokenizer = tokenizer
        self.name = name

    def __call__(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


class _TransformersCounter(ExactTokenCounter):
    def __call__(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])


def load_token_counter(model_dir: Path) -> ExactTokenCounter:
    """The tokenizer saved in a local model folder (tokenizer.json, else any HF tokenizer)."""
    tokenizer_file = model_dir / "tokenizer.json"
    if tokenizer_file.is_file():
        from tokenizers import Tokenizer

        return ExactTokenCounter(Tokenizer.from_file(str(tokenizer_file)), str(model_dir))
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError) as error:
        raise InvalidInputError(
            f"no tokenizer could be loaded from {model_dir} ({error}); point to a model "
            "folder with tokenizer files, or validate with approximate token counts",
            code="tokenizer_unavailable",
        ) from error
    return _TransformersCounter(tokenizer, str(model_dir))
