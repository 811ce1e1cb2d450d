"""Turn one parsed record of any format into the normalized example.

Each normalizer takes a record (a dict from a JSON line, a CSV row or a Parquet
row) and returns a `Normalized`: the example as the JSON object the trainer reads
(`records.Example`'s shape) and a rendering of its text used for duplicate
detection and token counting. A record that cannot be normalized raises
`RecordError` (record_fields.py) naming the code and the field. This is the hot
path of the validator: plain dicts and tuples, no pydantic objects per record.

Each format has a fast path, plain checks of the common shape without copying that
answer None for anything else, and a careful path that names the fault. They must
agree wherever the fast path answers: tests/unit/datasets/test_normalize_paths.py
checks it over generated records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeGuard

from whetstone.core.datasets.options import ColumnMapping
from whetstone.core.datasets.record_fields import (
    RecordError,
    checked_turns,
    content_field,
    label_field,
    text_field,
    type_name,
    weight_field,
)
from whetstone.core.datasets.records import ExampleKind
from whetstone.core.datasets.report import IssueCode
from whetstone.core.spec import DatasetFormat

CHAT = ExampleKind.CHAT
COMPLETION = ExampleKind.COMPLETION
TEXT = ExampleKind.TEXT
CLASSIFICATION = ExampleKind.CLASSIFICATION

OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "model": "assistant",
    "bard": "assistant",
    "bing": "assistant",
}
TEXT_KEYS = ("text", "sentence", "content", "document", "review")
LABEL_KEYS = ("label", "labels", "class", "category")
PAIR_KEYS = (
    ("prompt", "completion"),
    ("input", "output"),
    ("question", "answer"),
    ("query", "response"),
    ("source", "target"),
)
TEXT_KEYS_SET = frozenset(TEXT_KEYS)
LABEL_KEYS_SET = frozenset(LABEL_KEYS)
GENERIC_KEYS = frozenset(TEXT_KEYS + LABEL_KEYS + tuple(k for pair in PAIR_KEYS for k in pair))
# Either side of a preference pair makes a record one (preference.py reads it).
PREFERENCE_KEYS = frozenset(("chosen", "rejected", "preferred_output", "non_preferred_output"))
OPENAI_SIDES = ("preferred_output", "non_preferred_output")


def is_openai_pair(record: Mapping[str, Any], columns: ColumnMapping) -> bool:
    """Whether a preference record is in OpenAI's shape rather than in columns."""
    if not columns.is_empty():
        return False
    return not frozenset(OPENAI_SIDES).isdisjoint(record) or isinstance(record.get("input"), dict)


class Normalized(NamedTuple):
    kind: ExampleKind
    example: dict[str, Any]
    rendered: str
    label: str | None = None


def detect_record_format(record: Mapping[str, Any]) -> DatasetFormat | None:
    """The JSON-lines format a record's keys belong to, or None."""
    if not PREFERENCE_KEYS.isdisjoint(record):
        return DatasetFormat.PREFERENCE
    if "messages" in record:
        return DatasetFormat.OPENAI
    if "conversations" in record:
        return DatasetFormat.SHAREGPT
    if "instruction" in record:
        return DatasetFormat.ALPACA
    if not GENERIC_KEYS.isdisjoint(record):
        return DatasetFormat.JSONL
    return None


def _finish_chat(turns: list[dict[str, Any]], key: str, role_key: str) -> Normalized:
    last = turns[-1]["role"]
    if last != "assistant":
        path = f"{key}[{len(turns) - 1}].{role_key}"
        raise RecordError(
            IssueCode.LAST_TURN_NOT_ASSISTANT,
            f"the conversation ends with a {last} turn; end it with the assistant's answer "
            "(or drop the trailing turn)",
            path,
        )
    parts = []
    for turn in turns:
        parts.append(turn["role"])
        parts.append(turn["content"])
    return Normalized(CHAT, {"kind": "chat", "messages": turns}, "\n".join(parts))


_CANONICAL_ROLES = frozenset(("system", "user", "assistant"))


def _answered(last_role: str, turns: list[dict[str, Any]], parts: list[str]) -> Normalized | None:
    """A fast path's chat, when the assistant has the last turn."""
    if last_role != "assistant":
        return None
    return Normalized(CHAT, {"kind": "chat", "messages": turns}, "\n".join(parts))


def _fast_openai(messages: Any) -> Normalized | None:
    """The common case, checked with no copying; None sends the record to the careful path."""
    if type(messages) is not list or not messages:
        return None
    parts = []
    roles = _CANONICAL_ROLES
    try:
        for index, message in enumerate(messages):
            role = message["role"]
            content = message["content"]
            if (
                role not in roles
                or type(content) is not str
                or not content
                or content.isspace()
                or (role == "system" and index)
            ):
                return None
            if len(message) != 2:
                weight = message.get("weight")
                if (
                    len(message) != 3
                    or role != "assistant"
                    or type(weight) is not int
                    or weight not in (0, 1)
                ):
                    return None
            parts.append(role)
            parts.append(content)
    except (KeyError, TypeError):
        return None
    return _answered(role, messages, parts)


def normalize_openai(record: Mapping[str, Any], columns: ColumnMapping) -> Normalized:
    return _fast_openai(record.get("messages")) or _careful_openai(record)


def _careful_openai(record: Mapping[str, Any]) -> Normalized:
    turns: list[dict[str, Any]] = []
    for i, message, role in checked_turns(record, "messages", "content", OPENAI_ROLES, turns):
        turn: dict[str, Any] = {
            "role": role,
            "content": content_field(message.get("content"), f"messages[{i}].content"),
        }
        if "weight" in message:
            turn["weight"] = weight_field(message["weight"], role, f"messages[{i}].weight")
        turns.append(turn)
    return _finish_chat(turns, "messages", "role")


def _fast_sharegpt(conversations: Any, system: Any) -> Normalized | None:
    if type(conversations) is not list or not conversations:
        return None
    turns: list[dict[str, Any]] = []
    parts: list[str] = []
    if system is not None:
        if type(system) is not str or not system or system.isspace():
            return None
        turns.append({"role": "system", "content": system})
        parts += ("system", system)
    roles = SHAREGPT_ROLES
    try:
        for message in conversations:
            role = roles[message["from"]]
            content = message["value"]
            if (
                type(content) is not str
                or not content
                or content.isspace()
                or (role == "system" and turns)
            ):
                return None
            turns.append({"role": role, "content": content})
            parts += (role, content)
    except (KeyError, TypeError):
        return None
    return _answered(role, turns, parts)


def normalize_sharegpt(record: Mapping[str, Any], columns: ColumnMapping) -> Normalized:
    fast = _fast_sharegpt(record.get("conversations"), record.get("system"))
    return fast or _careful_sharegpt(record)


def _careful_sharegpt(record: Mapping[str, Any]) -> Normalized:
    turns: list[dict[str, Any]] = []
    if record.get("system") is not None:
        turns.append({"role": "system", "content": text_field(record, "system", "system")})
    checked = checked_turns(record, "conversations", "value", SHAREGPT_ROLES, turns)
    for i, message, role in checked:
        turns.append(
            {"role": role, "content": text_field(message, "value", f"conversations[{i}].value")}
        )
    return _finish_chat(turns, "conversations", "from")


def _nonblank(value: Any) -> TypeGuard[str]:
    return type(value) is str and bool(value) and not value.isspace()


def _fast_alpaca(record: Mapping[str, Any]) -> Normalized | None:
    instruction = record.get("instruction")
    output = record.get("output")
    extra = record.get("input")
    system = record.get("system")
    history = record.get("history")
    if not (_nonblank(instruction) and _nonblank(output)):
        return None
    if extra is not None and type(extra) is not str:
        return None
    if system is not None and not _nonblank(system):
        return None
    turns: list[dict[str, Any]] = []
    parts: list[str] = []
    if system is not None:
        turns.append({"role": "system", "content": system})
        parts += ("system", system)
    if history is not None:
        if type(history) is not list:
            return None
        for pair in history:
            if type(pair) is not list or len(pair) != 2:
                return None
            question, answer = pair
            if not (_nonblank(question) and _nonblank(answer)):
                return None
            turns.append({"role": "user", "content": question})
            turns.append({"role": "assistant", "content": answer})
            parts += ("user", question, "assistant", answer)
    prompt = instruction + "\n\n" + extra if extra and not extra.isspace() else instruction
    turns.append({"role": "user", "content": prompt})
    turns.append({"role": "assistant", "content": output})
    parts += ("user", prompt, "assistant", output)
    return Normalized(CHAT, {"kind": "chat", "messages": turns}, "\n".join(parts))


def normalize_alpaca(record: Mapping[str, Any], columns: ColumnMapping) -> Normalized:
    return _fast_alpaca(record) or _careful_alpaca(record)


def _careful_alpaca(record: Mapping[str, Any]) -> Normalized:
    instruction = text_field(record, "instruction", "instruction")
    extra = text_field(record, "input", "input", optional=True)
    output = text_field(record, "output", "output")
    turns: list[dict[str, Any]] = []
    if record.get("system") is not None:
        turns.append({"role": "system", "content": text_field(record, "system", "system")})
    history = record.get("history")
    if history is not None:
        if not isinstance(history, list):
            raise RecordError(
                IssueCode.WRONG_TYPE,
                f"'history' must be a list of [instruction, response] pairs, "
                f"not {type_name(history)}",
                "history",
            )
        for i, pair in enumerate(history):
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not all(type(p) is str and p.strip() for p in pair)
            ):
                raise RecordError(
                    IssueCode.WRONG_TYPE,
                    f"'history[{i}]' must be a pair of non-empty strings [instruction, response]",
                    f"history[{i}]",
                )
            turns.append({"role": "user", "content": pair[0]})
            turns.append({"role": "assistant", "content": pair[1]})
    prompt = instruction + "\n\n" + extra if extra.strip() else instruction
    turns.append({"role": "user", "content": prompt})
    turns.append({"role": "assistant", "content": output})
    return _finish_chat(turns, "messages", "role")


def _fast_generic(record: Mapping[str, Any]) -> Normalized | None:
    """The usual shapes, {text}, {text, label: str}, {prompt, completion}, {input, output}."""
    text = record.get("text")
    if text is not None:
        if not _nonblank(text):
            return None
        label = record.get("label")
        if label is None:
            if not LABEL_KEYS_SET.isdisjoint(record):
                return None
            return Normalized(TEXT, {"kind": "text", "text": text}, text)
        if not _nonblank(label):
            return None
        return Normalized(
            CLASSIFICATION,
            {"kind": "classification", "text": text, "label": label},
            text + "\n" + label,
            label,
        )
    if "prompt" in record or "completion" in record:  # the first pair named wins
        prompt, completion = record.get("prompt"), record.get("completion")
    else:
        prompt, completion = record.get("input"), record.get("output")
    if not (_nonblank(prompt) and _nonblank(completion)) or not TEXT_KEYS_SET.isdisjoint(record):
        return None
    return Normalized(
        COMPLETION,
        {"kind": "completion", "prompt": prompt, "completion": completion},
        prompt + "\n" + completion,
    )


def normalize_generic(record: Mapping[str, Any], columns: ColumnMapping) -> Normalized:
    """text, text+label, or a prompt/completion pair, by mapping or by key names."""
    fast = _fast_generic(record) if columns.is_empty() else None
    return fast or _careful_generic(record, columns)


def _careful_generic(record: Mapping[str, Any], columns: ColumnMapping) -> Normalized:
    if columns.prompt or columns.completion:
        return _pair(record, columns.prompt or "prompt", columns.completion or "completion")
    text_key, label_key = _text_keys(record, columns)
    if text_key is not None:
        text = text_field(record, text_key, text_key)
        if label_key is None:
            return Normalized(TEXT, {"kind": "text", "text": text}, text)
        label = label_field(record, label_key)
        return Normalized(
            CLASSIFICATION,
            {"kind": "classification", "text": text, "label": label},
            text + "\n" + label,
            label,
        )
    pair = _pair_keys(record)
    if pair is not None:
        return _pair(record, *pair)
    if label_key is not None:
        raise RecordError(
            IssueCode.MISSING_FIELD,
            f"the record has a '{label_key}' but no text; add 'text' (or map the text column)",
            "text",
        )
    raise RecordError(
        IssueCode.UNRECOGNIZED_RECORD,
        f"no known field among {sorted(record)[:8]}; use 'text', 'prompt'/'completion', "
        "'instruction'/'output', 'conversations' or 'messages', or map the columns",
    )


def _text_keys(record: Mapping[str, Any], columns: ColumnMapping) -> tuple[str | None, str | None]:
    text_key = columns.text or next((k for k in TEXT_KEYS if k in record), None)
    label_key = columns.label or next((k for k in LABEL_KEYS if k in record), None)
    return text_key, label_key


def _pair_keys(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """The prompt/completion pair a record's key names make: the first pair with either key
    (so its error names the missing one); `prompt` with `response` when `completion` is not
    there."""
    for prompt_key, completion_key in PAIR_KEYS:
        if prompt_key in record or completion_key in record:
            if prompt_key == "prompt" and completion_key not in record and "response" in record:
                return prompt_key, "response"
            return prompt_key, completion_key
    return None


def applied_columns(
    kind: ExampleKind, record: Mapping[str, Any], columns: ColumnMapping
) -> ColumnMapping | None:
    """The columns a file's examples are read from, as its first record shows: the mapping
    given or the names recognised; None for conversation formats."""
    if kind is ExampleKind.PREFERENCE:
        if is_openai_pair(record, columns):
            return None
        return ColumnMapping(
            prompt=columns.prompt or "prompt",
            chosen=columns.chosen or "chosen",
            rejected=columns.rejected or "rejected",
        )
    if kind is CHAT:
        if detect_record_format(record) is DatasetFormat.ALPACA:
            return ColumnMapping(prompt="instruction", completion="output")
        return None
    if columns.prompt or columns.completion:
        return ColumnMapping(
            prompt=columns.prompt or "prompt", completion=columns.completion or "completion"
        )
    text_key, label_key = _text_keys(record, columns)
    if kind is not COMPLETION:
        return ColumnMapping(text=text_key, label=label_key if kind is CLASSIFICATION else None)
    pair = _pair_keys(record)
    return ColumnMapping(prompt=pair[0], completion=pair[1]) if pair else None


def _pair(record: Mapping[str, Any], prompt_key: str, completion_key: str) -> Normalized:
    prompt = text_field(record, prompt_key, prompt_key)
    completion = text_field(record, completion_key, completion_key)
    return Normalized(
        COMPLETION,
        {"kind": "completion", "prompt": prompt, "completion": completion},
        prompt + "\n" + completion,
    )


Normalizer = Callable[[Mapping[str, Any], ColumnMapping], Normalized]

NORMALIZERS: dict[DatasetFormat, Normalizer] = {
    DatasetFormat.OPENAI: normalize_openai,
    DatasetFormat.SHAREGPT: normalize_sharegpt,
    DatasetFormat.ALPACA: normalize_alpaca,
    DatasetFormat.JSONL: normalize_generic,
}
