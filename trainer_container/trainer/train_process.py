"""How the train stage's process starts: with glibc's allocator keeping a step's memory for the
next (`trainer/allocator.py`) and, on an AMD CPU, oneMKL's vendor check lifted
(`trainer/cpu_blas.py`). Both take effect only from a process's start, through its
environment, so the stage re-executes itself with them: the same pid and command line, before
anything imports torch.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from . import allocator, cpu_blas


def train_environment(
    env: Mapping[str, str], cpuinfo: Path = Path("/proc/cpuinfo")
) -> dict[str, str] | None:
    """`env` with what applies of the two added, or None when neither adds anything."""
    tuned = allocator.allocator_environment(env)
    return cpu_blas.dispatch_environment(tuned or env, cpuinfo) or tuned


def relaunch_for_training() -> None:
    """Re-exec this program (same pid, same command line) in its train environment when that
    adds anything; return when it does not."""
    env = train_environment(os.environ)
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def describe(env: Mapping[str, str] = os.environ) -> list[str]:
    """Lines for the job log: how this process allocates and multiplies, where it matters."""
    return [line for line in (allocator.describe(env), cpu_blas.describe(env)) if line]
