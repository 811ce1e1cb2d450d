"""Read one field of a dataset record, checked: the value, or `RecordError` naming the
code, a fix and the field at fault."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

from whetstone.core.datasets.report import IssueCode


class RecordError(Exception):
    """A record that cannot be normalized: a stable code, a fix, the field at fault."""

    def __init__(self, code: IssueCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def text_field(record: Mapping[str, Any], key: str, path: str, *, optional: bool = False) -> str:
    value = record.get(key)
    if value is None:
        if optional:
            return ""
        if key in record:
            raise RecordError(IssueCode.EMPTY_FIELD, f"'{path}' is null; give it a text", path)
        raise RecordError(IssueCode.MISSING_FIELD, f"'{path}' is missing; add it", path)
    if type(value) is not str:
        raise RecordError(
            IssueCode.WRONG_TYPE, f"'{path}' must be a string, not {type_name(value)}", path
        )
    if not optional and (not value or value.isspace()):
        raise RecordError(IssueCode.EMPTY_FIELD, f"'{path}' is empty; give it a text", path)
    return value


def content_field(value: Any, path: str) -> str:
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
            texts.append(text_field(part, "text", f"{path}[{i}].text"))
        if texts:
            return "".join(texts)
        raise RecordError(IssueCode.EMPTY_FIELD, f"'{path}' is empty; give it a text", path)
    raise RecordError(
        IssueCode.WRONG_TYPE, f"'{path}' must be a string, not {type_name(value)}", path
    )


def checked_turns(
    record: Mapping[str, Any],
    key: str,
    content_key: str,
    known: Mapping[str, str],
    turns: list[dict[str, Any]],
) -> Iterator[tuple[int, dict[str, Any], str]]:
    """Each turn of the conversation `record[key]` that is an object with a known role in
    its place: its index, the object and the role. A system turn is in its place while
    `turns`, which the caller appends each turn to, is empty."""
    role_key = "role" if key == "messages" else "from"
    for i, message in enumerate(list_field(record, key)):
        if not isinstance(message, dict):
            path = f"{key}[{i}]"
            raise RecordError(
                IssueCode.WRONG_TYPE,
                f"'{path}' must be an object with {role_key} and {content_key}, "
                f"not {type_name(message)}",
                path,
            )
        raw_role = message.get(role_key)
        role = known.get(raw_role) if type(raw_role) is str else None
        if role is None:
            bad_role(raw_role, f"{key}[{i}].{role_key}", known)
        if role == "system" and turns:
            misplaced_system(f"{key}[{i}].{role_key}")
        yield i, message, role


def list_field(record: Mapping[str, Any], key: str) -> list[Any]:
    value = record.get(key)
    if value is None:
        raise RecordError(IssueCode.MISSING_FIELD, f"'{key}' is missing; add it", key)
    if not isinstance(value, list):
        raise RecordError(
            IssueCode.WRONG_TYPE, f"'{key}' must be a list, not {type_name(value)}", key
        )
    if not value:
        raise RecordError(IssueCode.EMPTY_FIELD, f"'{key}' is empty; add the turns", key)
    return value


def label_field(record: Mapping[str, Any], key: str) -> str:
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
        f"'{key}' must be a string or an integer, not {type_name(value)}",
        key,
    )


def bad_role(raw: Any, path: str, known: Mapping[str, str]) -> NoReturn:
    names = ", ".join(sorted(known))
    if raw is None:
        raise RecordError(IssueCode.MISSING_FIELD, f"'{path}' is missing; use one of {names}", path)
    if type(raw) is not str:
        raise RecordError(
            IssueCode.WRONG_TYPE, f"'{path}' must be a string, not {type_name(raw)}", path
        )
    raise RecordError(IssueCode.UNKNOWN_ROLE, f"role {raw!r} is unknown; use one of {names}", path)


def misplaced_system(path: str) -> NoReturn:
    raise RecordError(
        IssueCode.MISPLACED_SYSTEM,
        "a system turn may only open the conversation; move it first or make it a user turn",
        path,
    )


def weight_field(value: Any, role: str, path: str) -> float:
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
