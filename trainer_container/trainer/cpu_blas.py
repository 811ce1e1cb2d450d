"""oneMKL's vectorized kernels on AMD CPUs, for the process that trains.

torch's x86 wheels multiply float32 matrices with Intel's oneMKL, which picks its kernels by
CPU vendor: on a CPU that is not Intel's it runs a generic branch, whatever the CPU supports.
On an AMD EPYC (Zen 3, AVX2) that branch ran the rank-16 adapter's skinny products at half
the rate of oneMKL's AVX2 branch, and the base products up to a third slower on average
(0-12% at their best): 9% more useful tokens per second for the whole training step
(`bench/cpu_blas.py`, `bench/trainer_throughput.py`; docs/trainer.md, "Measured"). oneMKL
makes the choice in one exported function, `mkl_serv_intel_cpu_true`. A one-line library
that defines it to return 1, loaded ahead of torch (`LD_PRELOAD`), makes oneMKL choose its
branch by the CPU's features, as it does on Intel's: AVX2 on Zen 2 and 3, AVX-512 on Zen 4.
The products are the same float32 products, summed in another order.

No oneMKL setting does this (MKL_DEBUG_CPU_TYPE is gone since 2020; MKL_CBWR=AVX2 and
MKL_ENABLE_INSTRUCTIONS leave the vendor check in place) and no package ships the library,
so it is built from its one line of C by the machine's C compiler (`CC`, else `cc`), once,
into the user's cache. The train stage relaunches itself with it on an AMD CPU
(`trainer/train_process.py`: same process, same arguments); with no compiler, or with
WHETSTONE_MKL_DISPATCH=stock, it runs on the generic branch as before.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from whetstone.inference.tiny_base import default_cache_dir

SOURCE = "int mkl_serv_intel_cpu_true(void) { return 1; }\n"
LIBRARY_NAME = f"mkl-dispatch-{hashlib.sha256(SOURCE.encode()).hexdigest()[:12]}.so"
OPT_OUT = "WHETSTONE_MKL_DISPATCH"  # "stock": leave oneMKL's vendor check alone
_COMPILE_TIMEOUT_S = 60


def cpu_vendor(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The CPU's vendor id (`AuthenticAMD`, `GenuineIntel`), or None where there is none."""
    try:
        with cpuinfo.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key.strip() == "vendor_id":
                    return value.strip()
    except OSError:
        return None
    return None


def build_library(env: Mapping[str, str]) -> Path | None:
    """The dispatch library in the user's cache, compiled there first if it is missing;
    None when there is no C compiler or it fails."""
    target = default_cache_dir(env) / LIBRARY_NAME
    if target.is_file():
        return target
    compiler = env.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return None
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
            source = Path(scratch) / "mkl_dispatch.c"
            source.write_text(SOURCE)
            built = Path(scratch) / LIBRARY_NAME
            subprocess.run(
                [compiler, "-O2", "-shared", "-fPIC", "-o", str(built), str(source)],
                check=True,
                capture_output=True,
                timeout=_COMPILE_TIMEOUT_S,
            )
            os.replace(built, target)  # atomic: a concurrent trainer sees all of it or nothing
    except (OSError, subprocess.SubprocessError):
        return None
    return target


def active(env: Mapping[str, str] = os.environ) -> bool:
    """Whether this process runs with the dispatch library preloaded."""
    return any(Path(p).name == LIBRARY_NAME for p in env.get("LD_PRELOAD", "").split(":") if p)


def dispatch_environment(
    env: Mapping[str, str], cpuinfo: Path = Path("/proc/cpuinfo")
) -> dict[str, str] | None:
    """`env` with the dispatch library preloaded, or None when it does not apply: opted out,
    already preloaded, not an x86-64 Linux AMD CPU, or no library could be built."""
    if env.get(OPT_OUT) == "stock" or active(env):
        return None
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return None
    if cpu_vendor(cpuinfo) != "AuthenticAMD":
        return None
    library = build_library(env)
    if library is None:
        return None
    preload = env.get("LD_PRELOAD")
    return {**env, "LD_PRELOAD": f"{library}:{preload}" if preload else str(library)}


def describe(env: Mapping[str, str] = os.environ) -> str | None:
    """A line for the job log on an AMD CPU: which oneMKL branch this process multiplies on."""
    if active(env):
        return "oneMKL dispatches by CPU features on this AMD CPU (trainer/cpu_blas.py)"
    if cpu_vendor() != "AuthenticAMD":
        return None
    why = "opted out" if env.get(OPT_OUT) == "stock" else "its library needs a C compiler"
    return f"oneMKL runs its generic branch on this AMD CPU ({why}; trainer/cpu_blas.py)"
