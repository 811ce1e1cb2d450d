"""A model that proves a stream is relayed as it comes: its second piece waits until a
reader has the first."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from whetstone.inference.generation import Generation

ANSWER = Generation("Hello world", 3, 2, "stop")
# Only breaks the wait of a stream held back somewhere; the test then fails on `in_time`.
RELEASE_WAIT_S = 30.0


class GatedModel:
    """A stand-in for ChatModel: streams "Hello", then " world" once `released` is set; a
    stream buffered anywhere on its way never lets the reader set it in time."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.in_time: bool | None = None

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return messages[-1]["content"]

    def generate(self, prompt: str, **options: Any) -> Generation:
        return ANSWER

    def stream(self, prompt: str, **options: Any) -> Iterator[str | Generation]:
        yield "Hello"
        self.in_time = self.released.wait(RELEASE_WAIT_S)
        yield " world"
        yield ANSWER


def read_releasing(chunks: Any, model: GatedModel) -> list[Any]:
    """Every chunk of an openai client's stream, releasing `model` at its first text."""
    read = []
    for chunk in chunks:
        read.append(chunk)
        if chunk.choices and chunk.choices[0].delta.content:
            model.released.set()
    return read
