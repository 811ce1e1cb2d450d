"""glibc's allocator set to keep a training step's memory for the next step.

A step on a CPU allocates its activations and their gradients afresh and frees them by its
end: on the throughput bench, tensors of [tokens, 1024] floats, about 5 MB each. glibc serves
an allocation that large with its own mmap and unmaps it on free (its threshold for that
starts at 128 KiB and rises to the largest block freed), and it hands the top of its heap back
to the kernel once twice that threshold is free there, which the end of every step is. Either
way the next step's tensors land on pages the kernel must fault in and zero again: 700,000
faults over 20 steps of the bench's model, and 5-13% of a step's CPU time
(docs/trainer.md, "The recipe").

Two of glibc's tunables stop it: `mmap_threshold` at 32 MiB, glibc's largest, serves every
smaller block from the heap, and a `trim_threshold` of 1 TiB keeps what a step frees for the
next one, which needs as much; peak RSS stays the same. Tunables are read once, when a
process starts (`GLIBC_TUNABLES`), so the train stage relaunches itself with them
(`trainer/train_process.py`). WHETSTONE_MALLOC=stock opts out, and malloc tunables a user set
in GLIBC_TUNABLES are kept as they are.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

TUNABLES = {
    "glibc.malloc.mmap_threshold": str(32 << 20),
    "glibc.malloc.trim_threshold": str(1 << 40),
}
OPT_OUT = "WHETSTONE_MALLOC"  # "stock": glibc's allocator as it comes


def on_glibc() -> bool:
    if sys.platform != "linux":
        return False
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError):  # a libc that does not know the name: not glibc
        return False


def _tunables(env: Mapping[str, str]) -> list[str]:
    return [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]


def _sets_malloc(env: Mapping[str, str]) -> bool:
    return any(t.startswith("glibc.malloc.") for t in _tunables(env))


def active(env: Mapping[str, str] = os.environ) -> bool:
    """Whether this process was started with the tunables above."""
    return set(_tunables(env)) >= {f"{name}={value}" for name, value in TUNABLES.items()}


def allocator_environment(env: Mapping[str, str]) -> dict[str, str] | None:
    """`env` with the tunables added, or None when they do not apply: opted out, not glibc,
    or malloc tunables already set (these, or the user's own)."""
    if env.get(OPT_OUT) == "stock" or not on_glibc() or _sets_malloc(env):
        return None
    added = [f"{name}={value}" for name, value in TUNABLES.items()]
    return {**env, "GLIBC_TUNABLES": ":".join(_tunables(env) + added)}


def describe(env: Mapping[str, str] = os.environ) -> str | None:
    """A line for the job log where glibc allocates: whether it keeps a step's memory."""
    if active(env):
        return "glibc's allocator keeps each step's memory for the next (trainer/allocator.py)"
    if not on_glibc():
        return None
    if env.get(OPT_OUT) == "stock":
        why = "opted out"
    elif _sets_malloc(env):
        why = "GLIBC_TUNABLES sets its own"
    else:
        return None
    return f"glibc's allocator runs as set in the environment ({why}; trainer/allocator.py)"
