"""Turn one parsed record of any format into the normalized example.

Each normalizer takes a record (a dict from a JSON line, a CSV row or a Parquet
row) and returns a `Normalized`: the example as the JSON object the trainer reads
(`records.Example`'s shape) and a rendering of its text used for duplicate
detection and token counting. A record that cannot be normalized raises
`RecordError` naming the code and the field. This is the hot path of the
validator: plain dicts and tuples, no pydantic objects per record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, NoReturn, TypeGuard

from whetstone.core.datasets.options import ColumnMapping
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


class Normalized(NamedTuple):
    kind: ExampleKind
    example: dict[str, Any]
    rendered: str
    label: str | None = None


class RecordError(Exception):
    """A record that cannot be normalized: a stable code, a fix, the field at fault."""

    def __init__(self, code: IssueCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def detect_record_format(record: Mapping[str, Any]) -> DatasetFormat | None:
    """The JSON-lines format a record's keys belong to, or None."""
    if "messages" in record:
        return DatasetFormat.OPENAI
    if "conversations" in record:
        return DatasetFormat.SHAREGPT
    if "instruction" in record:
        return DatasetFormat.ALPACA
    if not GENERIC_KEYS.isdisjoint(record):
        return DatasetFormat.JSONL
    return None


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _text(record: Mapping[str, Any], key: str, path: str, *, optional: bool = False) -> str:
    value = record.get(key)
    if value is None:
        if optional:
            return ""
        if key in record:
            raise RecordError(IssueCode.EMPTY_FIELD, f"'{path}' is null; give it a text", path)
        raise RecordError(IssueCode.MISSING_FIELD, f"'{path}' is missing; add it", path)
    if type(value) is not str:
        raise RecordError(
            IssueCode.WRONG_TYPE, f"'{path}' must be a string, not {_type_name(value)}", path
        )
    if not optional and (not value or value.isspace()):
        raise RecordError(IssueCode.EMPTY_FIELD, f"'{path}' is empty; give it a text", path)
    return value


def _content(value: Any, path: str) -> str:
    """A message content: a string, or OpenAI's list of text parts."""
    if type(value) is str:
        if not value or value.isspace():
            raise RecordError(IssueCode.EMPTY_FIELD, f"'{path}' is empty; give it a text", path)
        return value
    if value is None:
        raise RecordError(IssueCode.MISSING_FIELD, f"'{path}' is missing; add it", path)
    if isinstance(value, list):
        texts = []
        for i, part in enumerate(value):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise RecordError(
                    IssueCode.WRONG_TYPE,
                    f"'{path}[{i}]' is not a text part; only {{'type': 'text', 'text': ...}} "
                    "parts can be trained on",
                    f"{path}[{i}]",
                )
            texts.append(_text(part, "text", f"{path}[{i}].text"))
        if texts:
            return "".join(texts)
        raise RecordError(IssueCode.EMPTY_FIELD, f"'{path}' is empty; give it a text", path)
    raise RecordError(
        IssueCode.WRONG_TYPE, f"'{path}' must be a string, not {_type_name(value)}", path
    )


def _list(record: Mapping[str, Any], key: str) -> list[Any]:
    value = record.get(key)
    if value is None:
        raise RecordError(IssueCode.MISSING_FIELD, f"'{key}' is missing; add it", key)
    if not isinstance(value, list):
        raise RecordError(
            IssueCode.WRONG_TYPE, f"'{key}' must be a list, not {_type_name(value)}", key
        )
    if not value:
        raise RecordError(IssueCode.EMPTY_FIELD, f"'{key}' is empty; add the turns", key)
    return value


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
    if role != "assistant":
        return None
    return Normalized(CHAT, {"kind": "chat", "messages": messages}, "\n".join(parts))


def normalize_openai(record: Mapping[str, Any], columns: ColumnMapping) -> Normalized:
    fast = _fast_openai(record.get("messages"))
    if fast is not None:
        return fast
    messages = _list(record, "messages")
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            path = f"messages[{i}]"
            raise RecordError(
                IssueCode.WRONG_TYPE,
                f"'{path}' must be an object with role and content, not {_type_name(message)}",
                path,
            )
        raw_role = message.get("role")
        role = OPENAI_ROLES.get(raw_role) if type(raw_role) is str else None
        if role is None:
            _bad_role(raw_role, f"messages[{i}].role", OPENAI_ROLES)
        if role == "system" and i:
            _misplaced_system(f"messages[{i}].role")
        turn: dict[str, Any] = {
            "role": role,
            "content": _content(message.get("content"), f"messages[{i}].content"),
        }
        if "weight" in message:
            turn["weight"] = _weight(message["weight"], role, f"messages[{i}].weight")
        turns.append(turn)
    return _finish_chat(turns, "messages", "role")


def _fast_sharegpt(conversations: Any, system: Any) -> Normalized | None:
    if type(conversations) is not list or not conversations:
        return None
    turns: list[dict[str, Any]] = []
    parts = []
    if system is not None:
        if type(system) is not str or not system or system.isspace():
            return None
        turns.append({"role": "system", "content": system})
        parts.append("system")
        parts.append(system)
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
            parts.append(role)
            parts.append(content)
    except (KeyError, TypeError):
        return None
    if role != "assistant":
        return None
    return Normalized(CHAT, {"kind": "chat", "messages": turns}, "\n".join(parts))


def normalize_sharegpt(record: Mapping[str, Any], columns: ColumnMapping) -> Normalized:
    fast = _fast_sharegpt(record.get("conversations"), record.get("system"))
    if fast is not None:
        return fast
    conversations = _list(record, "conversations")
    turns: list[dict[str, Any]] = []
    system = record.get("system")
    if system is not None:
        turns.append({"role": "system", "content": _text(record, "system", "system")})
    for i, message in enumerate(conversations):
        if not isinstance(message, dict):
            path = f"conversations[{i}]"
            raise RecordError(
                IssueCode.WRONG_TYPE,
                f"'{path}' must be an object with from and value, not {_type_name(message)}",
                path,
            )
        raw_role = message.get("from")
        role = SHAREGPT_ROLES.get(raw_role) if type(raw_role) is str else None
        if role is None:
            _bad_role(raw_role, f"conversations[{i}].from", SHAREGPT_ROLES)
        if role == "system" and turns:
            _misplaced_system(f"conversations[{i}].from")
        turns.append(
            {"role": role, "content": _text(message, "value", f"conversations[{i}].value")}
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
    if history:
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
    fast = _fast_alpaca(record)
    if fast is not None:
        return fast
    instruction = _text(record, "instruction", "instruction")
    extra = _text(record, "input", "input", optional=True)
    output = _text(record, "output", "output")
    turns: list[dict[str, Any]] = []
    if record.get("system") is not None:
        turns.append({"role": "system", "content": _text(record, "system", "system")})
    history = record.get("history")
    if history is not None:
        if not isinstance(history, list):
            raise RecordError(
                IssueCode.WRONG_TYPE,
                f"'history' must be a list of [instruction, response] pairs, "
                f"not {_type_name(history)}",
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


def _label(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if value is None:
        if key in record:
            raise RecordError(IssueCode.EMPTY_FIELD, f"'{key}' is null; give the class", key)
        raise RecordError(IssueCode.MISSING_FIELD, f"'{key}' is missing; add the class", key)
    if type(value) is str:
        if not value.strip():
            raise RecordError(IssueCode.EMPTY_FIELD, f"'{key}' is empty; give the class", key)
        return value
    if type(value) is int or type(value) is bool:
        return str(value).lower() if type(value) is bool else str(value)
    raise RecordError(
        IssueCode.WRONG_TYPE,
        f"'{key}' must be a string or an integer, not {_type_name(value)}",
        key,
    )


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
    if "prompt" in record:
        prompt, completion = record["prompt"], record.get("completion")
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
    if columns.is_empty():
        fast = _fast_generic(record)
        if fast is not None:
            return fast
    if columns.prompt or columns.completion:
        return _pair(record, columns.prompt or "prompt", columns.completion or "completion")
    text_key = columns.text or next((k for k in TEXT_KEYS if k in record), None)
    label_key = columns.label or next((k for k in LABEL_KEYS if k in record), None)
    if text_key is not None:
        text = _text(record, text_key, text_key)
        if label_key is None:
            return Normalized(TEXT, {"kind": "text", "text": text}, text)
        label = _label(record, label_key)
        return Normalized(
            CLASSIFICATION,
            {"kind": "classification", "text": text, "label": label},
            text + "\n" + label,
            label,
        )
    for prompt_key, completion_key in PAIR_KEYS:
        if prompt_key in record or completion_key in record:
            return _pair(record, prompt_key, completion_key)
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


def _pair(record: Mapping[str, Any], prompt_key: str, completion_key: str) -> Normalized:
    prompt = _text(record, prompt_key, prompt_key)
    completion = _text(record, completion_key, completion_key)
    return Normalized(
        COMPLETION,
        {"kind": "completion", "prompt": prompt, "completion": completion},
        prompt + "\n" + completion,
    )


def _bad_role(raw: Any, path: str, known: Mapping[str, str]) -> NoReturn:
    names = ", ".join(sorted(known))
    if raw is None:
        raise RecordError(IssueCode.MISSING_FIELD, f"'{path}' is missing; use one of {names}", path)
    if type(raw) is not str:
        raise RecordError(
            IssueCode.WRONG_TYPE, f"'{path}' must be a string, not {_type_name(raw)}", path
        )
    raise RecordError(IssueCode.UNKNOWN_ROLE, f"role {raw!r} is unknown; use one of {names}", path)


def _misplaced_system(path: str) -> NoReturn:
    raise RecordError(
        IssueCode.MISPLACED_SYSTEM,
        "a system turn may only open the conversation; move it first or make it a user turn",
        path,
    )


def _weight(value: Any, role: str, path: str) -> float:
    if role != "assistant":
        raise RecordError(
            IssueCode.INVALID_WEIGHT,
            f"'weight' applies to assistant turns only; remove it from this {role} turn",
            path,
        )
    if type(value) not in (int, float) or value not in (0, 1):
        raise RecordError(
            IssueCode.INVALID_WEIGHT, f"'weight' is {value!r}; use 0 (skip) or 1 (train)", path
        )
    return float(value)


Normalizer = Callable[[Mapping[str, Any], ColumnMapping], Normalized]

NORMALIZERS: dict[DatasetFormat, Normalizer] = {
    DatasetFormat.OPENAI: normalize_openai,
    DatasetFormat.SHAREGPT: normalize_sharegpt,
    DatasetFormat.ALPACA: normalize_alpaca,
    DatasetFormat.JSONL: normalize_generic,
}
