"""Which log lines of a job to read: the one query every LogStore, service and route passes on."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field

from whetstone.core.deferred import DeferredModel
from whetstone.core.job import LogLevelName, LogSource


class LogQuery(DeferredModel):
    """The filters and the page of one read of a job's logs; the store returns oldest first."""

    model_config = ConfigDict(frozen=True)

    source: Annotated[
        LogSource | None, Field(description="build, deployment or training; all if None.")
    ] = None
    min_level: Annotated[LogLevelName, Field(description="This level and above.")] = "debug"
    start: Annotated[datetime | None, Field(description="From this time, included.")] = None
    end: Annotated[datetime | None, Field(description="Until this time, excluded.")] = None
    limit: Annotated[int, Field(ge=1, description="At most this many entries.")] = 100
    cursor: Annotated[
        str | None, Field(description="Where the previous page ended; None for the first.")
    ] = None
