"""The base of the wire models, and fields borrowed from the models they are mapped from."""

from __future__ import annotations

from copy import copy
from typing import Any, Self

from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo

from whetstone.core.deferred import DeferredModel


def field_of(model: type[BaseModel], name: str) -> Any:
    """A copy of `model`'s field `name`: its default, constraints and description, so each
    fact is written once."""
    field: FieldInfo = copy(model.model_fields[name])
    return field


class WireModel(DeferredModel):
    """A body the API answers. Its fields are the whole contract: `from_record` reads exactly
    those from a record or a service result (nested wire models alike), so a field added to a
    record reaches no API user until a wire model names it. A field with a default is always
    present in an answer, so the OpenAPI document lists it as required."""

    model_config = ConfigDict(defer_build=True, json_schema_serialization_defaults_required=True)

    @classmethod
    def from_record(cls, record: object) -> Self:
        return cls.model_validate(record, from_attributes=True)
