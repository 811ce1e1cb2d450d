"""docs/job-spec.md, written from the spec models so it cannot drift from them.

    python -m whetstone.core.spec_doc > docs/job-spec.md

A test compares the file with `render()`; the rules listed under each section are the
docstrings of that model's validators.
"""

from __future__ import annotations

import json
import types
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from whetstone.core.spec import METHOD_DEPENDENT_RANGES, JobSpec
from whetstone.core.strict import StrictModel

_HEADER = """\
# Job spec reference

<!-- Generated from whetstone/core/spec.py by `python -m whetstone.core.spec_doc >
docs/job-spec.md`; edit the models, not this file (a test checks they agree). -->

A job config, as `whet jobs create` reads it (YAML or JSON) and `POST /jobs` takes it,
is a job spec, or `{name, spec}`. Only `base_model` is required; every other field has
the default below. Unknown fields are refused with the closest known name.

```yaml
name: my-first-job
spec:
  base_model: qwen2.5-0.5b-instruct
  method: lora
  training: {epochs: 2, learning_rate: 0.0002}
  lora: {r: 8}
```
"""


def render() -> str:
    """The whole reference, as Markdown."""
    parts = [_HEADER]
    for path, model in _sections(JobSpec, ""):
        parts.append(_section(path, model))
    return "\n".join(parts)


def _sections(model: type[BaseModel], path: str) -> list[tuple[str, type[BaseModel]]]:
    found = [(path, model)]
    for name, field in model.model_fields.items():
        nested = _model_of(field.annotation)
        if nested is not None:
            found += _sections(nested, f"{path}.{name}" if path else name)
    return found


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, StrictModel):
        return annotation
    return None


def _section(path: str, model: type[BaseModel]) -> str:
    title = f"`{path}`" if path else "Top level"
    doc = " ".join((model.__doc__ or "").split())
    lines = [f"## {title}", "", doc, "", "| field | type | default | range | description |"]
    lines.append("|---|---|---|---|---|")
    for name, field in model.model_fields.items():
        cells = [
            f"`{name}`",
            _type(field.annotation),
            _default(field),
            METHOD_DEPENDENT_RANGES.get(f"{path}.{name}") or _range(field),
            " ".join((field.description or "").split()),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    rules = _rules(model)
    if rules:
        lines += ["", "Rules:", ""] + [f"- {rule}" for rule in rules]
    return "\n".join(lines) + "\n"


def _type(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " or ".join(f"`{_value(value)}`" for value in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(_type(arg) for arg in get_args(annotation))
    if origin is list:
        (item,) = get_args(annotation)
        return f"list of {_type(item)}"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " or ".join(f"`{member.value}`" for member in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object (below)"
    if annotation is type(None):
        return "null"
    return _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


_TYPE_NAMES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _value(value: Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    return value if isinstance(value, str) else json.dumps(value)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "see below"
    else:
        value = field.default
    return f"`{_value(value)}`"


_BOUNDS: list[tuple[type[Any], str, str]] = [
    (Ge, "ge", "≥"),
    (Gt, "gt", ">"),
    (Le, "le", "≤"),
    (Lt, "lt", "<"),
    (MinLen, "min_length", "length ≥"),
    (MaxLen, "max_length", "length ≤"),
]


def _range(field: FieldInfo) -> str:
    bounds = [
        f"{symbol} {getattr(item, attribute)}"
        for item in field.metadata
        for kind, attribute, symbol in _BOUNDS
        if isinstance(item, kind)
    ]
    return ", ".join(bounds)


def _rules(model: type[BaseModel]) -> list[str]:
    """The docstrings of the model's own validators (the unknown-field check is everyone's)."""
    decorators = model.__pydantic_decorators__
    inherited = StrictModel.__pydantic_decorators__.model_validators
    functions: list[Any] = [
        *(d.func for name, d in decorators.model_validators.items() if name not in inherited),
        *(d.func for d in decorators.field_validators.values()),
    ]
    return [" ".join((function.__doc__ or "").split()) for function in functions]


if __name__ == "__main__":
    print(render(), end="")
