"""Wire fields borrowed from the models they are mapped from, so each fact is written once."""

from __future__ import annotations

from copy import copy
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo


def field_of(model: type[BaseModel], name: str) -> Any:
    """A copy of `model`'s field `name`: its default, constraints and description."""
    field: FieldInfo = copy(model.model_fields[name])
    return field
