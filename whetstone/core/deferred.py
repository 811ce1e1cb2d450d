"""The base of Whetstone's pydantic models that sit on the API's cold-start path."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DeferredModel(BaseModel):
    """A pydantic model whose validator is built on first use rather than at import.

    Building every schema at import cost the API Lambda about 0.1 s of each cold start
    (bench/api_latency.py); deferred, a request builds only the models it touches.
    """

    model_config = ConfigDict(defer_build=True)
