"""Preference pairs for the `dpo` method, normalized to a `preference` example: the prompt
conversation (ending with the user's turn), the preferred answer and the rejected one.

Two shapes: OpenAI's `{"input": {"messages": [...]}, "preferred_output": [{"role":
"assistant", "content": ...}], "non_preferred_output": [...]}`, and `prompt` / `chosen` /
`rejected` columns (or the columns a mapping names).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from whetstone.core.datasets.normalize import (
    OPENAI_ROLES,
    OPENAI_SIDES,
    Normalized,
    is_openai_pair,
)
from whetstone.core.datasets.options import ColumnMapping
from whetstone.core.datasets.record_fields import (
    RecordError,
    checked_turns,
    content_field,
    text_field,
    type_name,
)
from whetstone.core.datasets.records import ExampleKind
from whetstone.core.datasets.report import Issue, IssueCode


def normalize_preference(record: Mapping[str, Any], columns: ColumnMapping) -> Normalized:
    """A preference pair in either shape; RecordError names what is wrong with it."""
    if is_openai_pair(record, columns):
        turns = _openai_prompt(record)
        chosen = _openai_side(record, OPENAI_SIDES[0])
        rejected = _openai_side(record, OPENAI_SIDES[1])
    else:
        prompt_key = columns.prompt or "prompt"
        prompt = _required_text(record, prompt_key, IssueCode.EMPTY_PROMPT, "the prompt")
        turns = [{"role": "user", "content": prompt}]
        sides = (columns.chosen or "chosen", columns.rejected or "rejected")
        chosen, rejected = (
            _required_text(record, key, IssueCode.MISSING_SIDE, "both answers") for key in sides
        )
    if chosen == rejected:
        raise RecordError(
            IssueCode.IDENTICAL_PAIR,
            "the preferred and the rejected answers are the same text, so the pair teaches "
            "nothing; fix or drop it",
        )
    parts = [part for turn in turns for part in (turn["role"], turn["content"])]
    example = {"kind": "preference", "messages": turns, "chosen": chosen, "rejected": rejected}
    return Normalized(ExampleKind.PREFERENCE, example, "\n".join([*parts, chosen, rejected]))


def _required_text(record: Mapping[str, Any], key: str, code: IssueCode, give: str) -> str:
    """A text column of the pair; missing or blank is `code`, not a generic field error."""
    value = record.get(key)
    if value is None or (type(value) is str and (not value or value.isspace())):
        raise RecordError(code, f"'{key}' is missing or empty; give {give}", key)
    return text_field(record, key, key)


def _openai_prompt(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    source = record.get("input")
    if not isinstance(source, dict) or not source.get("messages"):
        raise RecordError(
            IssueCode.EMPTY_PROMPT,
            "'input.messages' is missing or empty; give the prompt as a conversation",
            "input.messages",
        )
    turns: list[dict[str, Any]] = []
    try:
        for i, message, role in checked_turns(source, "messages", "content", OPENAI_ROLES, turns):
            content = content_field(message.get("content"), f"messages[{i}].content")
            turns.append({"role": role, "content": content})
    except RecordError as error:
        raise RecordError(
            error.code,
            error.message.replace("'messages", "'input.messages"),
            f"input.{error.field}",
        ) from error
    if turns[-1]["role"] != "user":
        raise RecordError(
            IssueCode.PROMPT_NOT_USER_LAST,
            f"the prompt ends with the {turns[-1]['role']}'s turn; end 'input.messages' with the "
            "user's turn the answers reply to",
            f"input.messages[{len(turns) - 1}].role",
        )
    return turns


def _openai_side(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if not value:
        raise RecordError(
            IssueCode.MISSING_SIDE,
            f"'{key}' is missing or empty; give [{{'role': 'assistant', 'content': ...}}]",
            key,
        )
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
        raise RecordError(
            IssueCode.WRONG_TYPE,
            f"'{key}' must be a list of one assistant message, not {type_name(value)}",
            key,
        )
    message = value[0]
    if message.get("role") != "assistant":
        raise RecordError(
            IssueCode.UNKNOWN_ROLE,
            f"'{key}[0].role' is {message.get('role')!r}; the answer is the assistant's",
            f"{key}[0].role",
        )
    if message.get("content") is None or (
        type(message["content"]) is str and not message["content"].strip()
    ):
        raise RecordError(
            IssueCode.MISSING_SIDE,
            f"'{key}[0].content' is missing or empty; give both answers",
            f"{key}[0].content",
        )
    return content_field(message["content"], f"{key}[0].content")


def method_mismatch(kind: ExampleKind | None, wants_pairs: bool | None) -> Issue | None:
    """The error when a job's method and its data disagree: dpo needs preference pairs, and
    only dpo trains on them. `wants_pairs` None: no method to agree with."""
    if kind is None or wants_pairs is None or (kind is ExampleKind.PREFERENCE) == wants_pairs:
        return None
    if wants_pairs:
        message = (
            f"method dpo trains on preference pairs but the dataset holds {kind} examples; "
            "give prompt/chosen/rejected columns or OpenAI's input/preferred_output/"
            "non_preferred_output records"
        )
    else:
        message = (
            "the dataset holds preference pairs, which only method dpo trains on; set "
            "method: dpo (dpo.tuning picks lora, qlora or full) or give examples to imitate"
        )
    return Issue(code=IssueCode.METHOD_DATA_MISMATCH, message=message)
