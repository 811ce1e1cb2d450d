"""Each format's fast path (plain checks for the common shape, no copying) agrees with its
careful path (which names the fault) on every record the fast path accepts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whetstone.core.datasets.normalize import (
    GENERIC_KEYS,
    Normalized,
    _careful_alpaca,
    _careful_generic,
    _careful_openai,
    _careful_sharegpt,
    _fast_alpaca,
    _fast_generic,
    _fast_openai,
    _fast_sharegpt,
    normalize_alpaca,
    normalize_generic,
)
from whetstone.core.datasets.options import ColumnMapping
from whetstone.core.datasets.record_fields import RecordError

Record = dict[str, Any]
EXAMPLES = settings(
    max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

# Mostly good values, so that both paths take most records; now and then one of every
# kind of fault, so that the fast path must decline it.
good = st.sampled_from(["hi", "Paris.", "東京 ok", "0", " padded "]) | st.text(
    min_size=1, max_size=3
)
odd = st.none() | st.booleans() | st.integers(-1, 2) | st.floats(0, 1) | st.just([]) | st.just({})
bad = st.sampled_from(["", " ", "\n\t"]) | odd
fields = st.one_of(good, good, good, bad)
text_parts = st.lists(
    st.fixed_dictionaries({"type": st.sampled_from(["text", "text", "image_url"]), "text": fields}),
    max_size=2,
)


def conversations(
    role_key: str, content_key: str, roles: list[str], answer: str, content: Any
) -> Any:
    role = st.one_of(st.sampled_from(roles), st.sampled_from(roles), st.sampled_from(roles), odd)

    def turn(role: Any) -> Any:
        plain = st.fixed_dictionaries({role_key: role, content_key: content})
        extra = st.fixed_dictionaries(
            {role_key: role, content_key: content},
            optional={"weight": st.sampled_from([0, 1, 0.0, 1.0, 0.5, True, "1"]), "name": good},
        )
        return st.one_of(plain, plain, plain, extra)

    ending = st.builds(
        lambda head, last: [*head, last], st.lists(turn(role), max_size=3), turn(st.just(answer))
    )
    return st.one_of(ending, ending, ending, st.lists(turn(role) | odd, max_size=3), odd)


openai = st.fixed_dictionaries(
    {
        "messages": conversations(
            "role",
            "content",
            ["user", "assistant", "user", "assistant", "system", "developer", "tool"],
            "assistant",
            st.one_of(fields, fields, fields, text_parts),
        )
    }
)
sharegpt = st.fixed_dictionaries(
    {
        "conversations": conversations(
            "from",
            "value",
            ["human", "gpt", "user", "assistant", "system", "chatgpt", "bard", "tool"],
            "gpt",
            fields,
        )
    },
    optional={"system": fields},
)
pairs = st.lists(
    st.one_of(st.lists(good, min_size=2, max_size=2), st.lists(fields, max_size=3), odd), max_size=2
)
alpaca = st.fixed_dictionaries(
    {"instruction": fields, "output": fields},
    optional={"input": fields, "system": fields, "history": st.one_of(pairs, pairs, odd)},
)
shapes = st.one_of(
    st.fixed_dictionaries({"text": fields}),
    st.fixed_dictionaries({"text": fields, "label": st.one_of(fields, st.integers(0, 3))}),
    st.fixed_dictionaries({"prompt": fields, "completion": fields}),
    st.fixed_dictionaries({"input": fields, "output": fields}),
)
generic = st.builds(
    lambda shape, extra: {**shape, **extra},
    shapes,
    st.dictionaries(st.sampled_from(sorted(GENERIC_KEYS) + ["other"]), fields, max_size=1),
)


def agree(
    fast: Callable[[Record], Normalized | None], careful: Callable[[Record], Normalized]
) -> Callable[[Record], None]:
    def check(record: Record) -> None:
        quick = fast(record)
        if quick is None:
            return  # the careful path decides alone
        try:
            thorough = careful(record)
        except RecordError as error:
            message = f"the fast path accepts what the careful one refuses: {error}"
            raise AssertionError(message) from error
        assert quick == thorough
        same_json = json.dumps(quick.example, sort_keys=True) == json.dumps(
            thorough.example, sort_keys=True
        )
        assert same_json  # `==` holds 1 and 1.0 for equal; the JSON the trainer reads does not

    return check


@EXAMPLES
@given(openai)
def test_openai_paths_agree(record: Record) -> None:
    agree(lambda r: _fast_openai(r.get("messages")), _careful_openai)(record)


@EXAMPLES
@given(sharegpt)
def test_sharegpt_paths_agree(record: Record) -> None:
    agree(lambda r: _fast_sharegpt(r.get("conversations"), r.get("system")), _careful_sharegpt)(
        record
    )


@EXAMPLES
@given(alpaca)
def test_alpaca_paths_agree(record: Record) -> None:
    agree(_fast_alpaca, _careful_alpaca)(record)


@EXAMPLES
@given(generic)
def test_generic_paths_agree(record: Record) -> None:
    agree(_fast_generic, lambda r: _careful_generic(r, ColumnMapping()))(record)


def test_a_developer_turn_leaves_the_fast_path_and_becomes_a_system_turn() -> None:
    common = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]
    record = {"messages": [{"role": "developer", "content": "be brief"}, *common]}

    normalized = _fast_openai(record["messages"]) or _careful_openai(record)

    assert _fast_openai(record["messages"]) is None
    assert normalized.example["messages"][0] == {"role": "system", "content": "be brief"}


@pytest.mark.parametrize(
    ("normalize", "record", "field"),
    [
        (normalize_alpaca, {"instruction": "hi", "output": "ok", "history": False}, "history"),
        (normalize_generic, {"input": "hi", "output": "ok", "completion": "x"}, "prompt"),
    ],
)
def test_a_record_the_fast_path_once_took_is_refused_naming_the_field(
    normalize: Callable[[Record, ColumnMapping], Normalized], record: Record, field: str
) -> None:
    with pytest.raises(RecordError) as refused:
        normalize(record, ColumnMapping())

    assert refused.value.field == field
