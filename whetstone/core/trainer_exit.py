"""How the trainer process ends: its exit codes, which the computes read."""

from __future__ import annotations

from enum import IntEnum


class TrainerExit(IntEnum):
    """The exit codes of `python -m trainer`."""

    DONE = 0
    # A failure retrying cannot fix; a `failed` status event says why.
    FAILED = 1
    # 128 + SIGTERM: stopped after saving a checkpoint, so a restart with the same output
    # resumes. A pod that exits so counts as failed, hence is retried.
    INTERRUPTED = 143
