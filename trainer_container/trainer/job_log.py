"""What the trainer's libraries say, routed into the job's log.

Events own stdout, and the local runtime logs every line of the trainer's stderr as a warning
of the job, so what libraries say goes through here instead of to stderr: their log records
at warning level and above, and Python warnings (captured as the `py.warnings` logger), each
as a log event. What a user cannot act on (`LIBRARY_NOISE`: warnings libraries raise about
their own calls, optional kernels absent on this machine) goes at debug level. Progress bars
are off: each redraw would be a line of stderr. Our own calls use current names, so none of
their deprecation warnings is ever noise: a new one shows as a warning.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from whetstone.core.events import LogLevel

LIBRARY_LOGGERS = (
    "transformers",
    "peft",
    "accelerate",
    "torch",
    "torchao",
    "bitsandbytes",
    "py.warnings",
)
LIBRARY_NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        # peft reads the deprecated `is_gradient_checkpointing` of transformers 5 models.
        r"`is_gradient_checkpointing` is deprecated",
        # peft's prompt tuning drops the position ids transformers passes while generating.
        r"Position ids are not supported for parameter efficient tuning",
        # torchao registers, at import, enums that torch.compile now supports natively.
        r"is an Enum subclass and is now natively supported by torch\.compile",
        # torchao's optional kernels, absent from CPU-only installs.
        r"^Failed to load \S*torchao",
        r"Detected no triton, on systems without Triton certain kernels will not work",
    )
)
_LEVELS: dict[int, LogLevel] = {logging.CRITICAL: "critical", logging.ERROR: "error"}


def is_noise(message: str) -> bool:
    """Whether a library's message is one a user cannot act on."""
    return any(pattern.search(message) for pattern in LIBRARY_NOISE)


class EventLogHandler(logging.Handler):
    """Forwards library log records and Python warnings as log events."""

    def __init__(self, emitter: Any) -> None:
        super().__init__(level=logging.WARNING)
        self.emitter = emitter

    def emit(self, record: logging.LogRecord) -> None:
        # A captured warning reads "file:line: Category: text" and then its source line.
        message = record.getMessage().strip().splitlines()[0]
        level = "debug" if is_noise(message) else _LEVELS.get(record.levelno, "warning")
        try:
            self.emitter.log(level, message, logger=record.name)
        except Exception:
            self.handleError(record)


def route_library_logs(emitter: Any) -> None:
    """Send what the libraries log and warn to `emitter`, and nothing of it to stderr."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # Imported first: each installs its own stderr handler at import, removed below.
    import torch  # noqa: F401
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_default_handler()
    transformers_logging.disable_progress_bar()
    logging.captureWarnings(True)
    handler = EventLogHandler(emitter)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for own in list(logger.handlers):
            logger.removeHandler(own)
        logger.addHandler(handler)
        logger.propagate = False
