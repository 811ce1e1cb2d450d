"""A model's answer streamed piece by piece is the answer generated whole."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")


def test_the_streamed_pieces_join_to_the_whole_greedy_answer(tiny_model_dir: Path) -> None:
    # Given a loaded model and a prompt
    from whetstone.inference.generation import ChatModel, Generation

    model = ChatModel.load(tiny_model_dir)
    prompt = model.chat_prompt([{"role": "user", "content": "Count: 1 2 3"}])
    whole = model.generate(prompt, max_tokens=12)

    # When it is streamed
    pieces = list(model.stream(prompt, max_tokens=12))

    # Then the pieces come before the Generation, join to its text, which is the whole answer
    *texts, last = pieces
    assert all(isinstance(text, str) and text for text in texts) and len(texts) >= 2
    assert isinstance(last, Generation) and last == whole
    assert "".join(str(text) for text in texts) == whole.text


def test_a_stop_string_ends_the_stream_where_it_ends_the_answer(tiny_model_dir: Path) -> None:
    from whetstone.inference.generation import ChatModel

    model = ChatModel.load(tiny_model_dir)
    prompt = model.chat_prompt([{"role": "user", "content": "Count: 1 2 3"}])
    free = model.generate(prompt, max_tokens=12).text
    stop = free[len(free) // 2 : len(free) // 2 + 2]  # two characters from its middle
    whole = model.generate(prompt, max_tokens=12, stop=[stop])

    *texts, last = model.stream(prompt, max_tokens=12, stop=[stop])

    assert last == whole and whole.finish_reason == "stop"
    assert "".join(str(text) for text in texts) == whole.text and stop not in whole.text
