"""trainer.train_process and trainer.allocator: the train stage's process starts with glibc's
allocator keeping a step's memory and, on AMD CPUs, oneMKL's dispatch (test_cpu_blas.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from trainer import allocator, cpu_blas, train_process

TUNED = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1099511627776"
ON_GLIBC = allocator.on_glibc()
on_glibc = pytest.mark.skipif(not ON_GLIBC, reason="glibc's allocator only")


@on_glibc
def test_the_tunables_are_added_to_what_the_environment_has() -> None:
    assert allocator.allocator_environment({"HOME": "/h"}) == {
        "HOME": "/h",
        "GLIBC_TUNABLES": TUNED,
    }
    other = {"GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=512"}
    assert allocator.allocator_environment(other) == {
        "GLIBC_TUNABLES": f"glibc.rtld.optional_static_tls=512:{TUNED}"
    }
    assert allocator.active({"GLIBC_TUNABLES": TUNED})
    assert not allocator.active({}) and not allocator.active(other)


@on_glibc
def test_a_users_malloc_tunables_and_the_opt_out_are_kept() -> None:
    own = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    assert allocator.allocator_environment(own) is None
    assert allocator.allocator_environment({"GLIBC_TUNABLES": TUNED}) is None  # never twice
    assert allocator.allocator_environment({allocator.OPT_OUT: "stock"}) is None
    assert "sets its own" in (allocator.describe(own) or "")
    assert "opted out" in (allocator.describe({allocator.OPT_OUT: "stock"}) or "")
    assert "keeps each step's memory" in (allocator.describe({"GLIBC_TUNABLES": TUNED}) or "")
    assert allocator.describe({}) is None


_STEPS = textwrap.dedent(
    """
    import resource

    def step():  # ten 4 MiB blocks held at once, then all freed, as a training step's tensors
        blocks = [b"x" * (4 << 20) for _ in range(10)]
        del blocks

    step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _page_faults(env: dict[str, str]) -> int:
    out = subprocess.run([sys.executable, "-c", _STEPS], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


@on_glibc
def test_the_tunables_keep_a_steps_memory_for_the_next() -> None:
    stock = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    tuned = allocator.allocator_environment(stock)
    assert tuned is not None

    # stock glibc hands the freed 40 MiB back to the kernel after each step and faults its
    # pages in again (10 steps x 10,240 pages); tuned, the steps reuse the same pages
    stock_faults, tuned_faults = _page_faults(stock), _page_faults(tuned)
    assert stock_faults > 50_000
    assert tuned_faults < stock_faults / 20


def test_the_train_environment_composes_both(tmp_path: Path) -> None:
    amd, intel = tmp_path / "amd", tmp_path / "intel"
    amd.write_text("vendor_id\t: AuthenticAMD\n")
    intel.write_text("vendor_id\t: GenuineIntel\n")
    library = tmp_path / "cache" / "whetstone" / cpu_blas.LIBRARY_NAME
    library.parent.mkdir(parents=True)
    library.write_text("built")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}

    on_amd = train_process.train_environment(env, amd)
    on_intel = train_process.train_environment(env, intel)
    stock = {**env, allocator.OPT_OUT: "stock", cpu_blas.OPT_OUT: "stock"}

    assert train_process.train_environment(stock, amd) is None
    if ON_GLIBC:
        assert on_intel == {**env, "GLIBC_TUNABLES": TUNED}
    if sys.platform == "linux" and os.uname().machine == "x86_64":
        assert on_amd is not None and cpu_blas.active(on_amd)
        assert allocator.active(on_amd) == ON_GLIBC
        assert train_process.train_environment(on_amd, amd) is None  # nothing left to add


_RELAUNCHED = textwrap.dedent(
    """
    import os, sys
    from trainer import allocator, train_process
    print("start", os.getpid(), flush=True)
    train_process.relaunch_for_training()
    print("running", os.getpid(), allocator.active(), sys.argv[1:], flush=True)
    """
)


def test_relaunch_keeps_the_process_and_its_arguments(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("GLIBC_TUNABLES", None)
    out = subprocess.run(
        [sys.executable, "-c", _RELAUNCHED, "--spec", "plan.json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()

    relaunched = train_process.train_environment(env) is not None
    pid = out[0].split()[1]
    assert out == [f"start {pid}"] * (2 if relaunched else 1) + [
        f"running {pid} {ON_GLIBC} ['--spec', 'plan.json']"
    ]
