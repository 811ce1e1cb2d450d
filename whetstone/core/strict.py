"""Models that refuse unknown fields with a message a person can act on.

pydantic's own refusal ("Extra inputs are not permitted") names neither what was meant
nor what is known; a typo such as `epoch` deserves "did you mean 'epochs'?".
"""

from __future__ import annotations

from collections.abc import Mapping
from difflib import get_close_matches
from typing import Any, ClassVar

from pydantic import ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from whetstone.core.deferred import DeferredModel


def unknown_field_message(
    unknown: str,
    known: list[str],
    *,
    synonyms: Mapping[str, str] | None = None,
    reference: str | None = None,
) -> str:
    """What to say about one unknown field: the known name it stands for or is closest to,
    else all known names."""
    meant = (synonyms or {}).get(unknown.lower())
    close = [meant] if meant else get_close_matches(unknown, known, n=2, cutoff=0.5)
    if close:
        hint = "did you mean " + " or ".join(repr(name) for name in close) + "?"
    else:
        hint = "known fields: " + ", ".join(known)
    see = f" (see {reference})" if reference else ""
    return f"unknown field {unknown!r}; {hint}{see}"


class StrictModel(DeferredModel):
    """A model whose unknown fields are refused by name, with the closest known one."""

    model_config = ConfigDict(extra="forbid")
    # The document listing this model's fields, named in the refusal.
    field_reference: ClassVar[str | None] = None
    # Names people use for a field that spelling alone does not lead to (rank -> r).
    field_synonyms: ClassVar[Mapping[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = list(cls.model_fields)
        unknown = [key for key in data if isinstance(key, str) and key not in cls.model_fields]
        if unknown:
            message = "; ".join(
                unknown_field_message(
                    key, known, synonyms=cls.field_synonyms, reference=cls.field_reference
                )
                for key in unknown
            )
            raise PydanticCustomError("unknown_field", "{message}", {"message": message})
        return data
