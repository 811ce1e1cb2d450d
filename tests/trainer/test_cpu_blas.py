"""trainer.cpu_blas: oneMKL's vendor check lifted for the train stage on AMD CPUs only."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from trainer import cpu_blas

AMD = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2\n\n"
INTEL = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2\n\n"
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\n\n"

on_x86_linux = pytest.mark.skipif(
    sys.platform != "linux" or platform.machine() != "x86_64", reason="an x86-64 Linux check"
)
HAS_COMPILER = bool(os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc"))
ON_AMD = cpu_blas.cpu_vendor() == "AuthenticAMD"


def _cpuinfo(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"cpuinfo-{[AMD, INTEL, ARM].index(text)}"
    path.write_text(text)
    return path


def _fake_compiler(tmp_path: Path) -> str:
    """A `CC` that writes a file where `-o` says and counts its runs."""
    script = tmp_path / "fake-cc"
    script.write_text(
        f'#!/bin/sh\necho run >> {tmp_path}/compiles\nwhile [ "$1" != "-o" ]; do shift; done\n'
        'echo library > "$2"\n'
    )
    script.chmod(0o755)
    return str(script)


def test_the_vendor_comes_from_cpuinfo(tmp_path: Path) -> None:
    assert cpu_blas.cpu_vendor(_cpuinfo(tmp_path, AMD)) == "AuthenticAMD"
    assert cpu_blas.cpu_vendor(_cpuinfo(tmp_path, INTEL)) == "GenuineIntel"
    assert cpu_blas.cpu_vendor(_cpuinfo(tmp_path, ARM)) is None
    assert cpu_blas.cpu_vendor(tmp_path / "missing") is None


@on_x86_linux
def test_an_amd_cpu_gets_the_library_built_once_and_preloaded_first(tmp_path: Path) -> None:
    env = {
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "CC": _fake_compiler(tmp_path),
        "LD_PRELOAD": "/opt/other.so",
    }
    cpuinfo = _cpuinfo(tmp_path, AMD)

    first = cpu_blas.dispatch_environment(env, cpuinfo)
    again = cpu_blas.dispatch_environment({**env, "CC": "/bin/false"}, cpuinfo)

    library = tmp_path / "cache" / "whetstone" / cpu_blas.LIBRARY_NAME
    assert first is not None and again is not None
    assert first["LD_PRELOAD"] == f"{library}:/opt/other.so"
    assert first["XDG_CACHE_HOME"] == env["XDG_CACHE_HOME"]  # the rest of the environment kept
    assert again["LD_PRELOAD"] == first["LD_PRELOAD"]  # the cached library, no second build
    assert (tmp_path / "compiles").read_text().count("run") == 1
    assert cpu_blas.active(first) and not cpu_blas.active(env)


@on_x86_linux
def test_everywhere_else_the_environment_is_left_alone(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    env = {"XDG_CACHE_HOME": cache, "CC": _fake_compiler(tmp_path)}
    amd = _cpuinfo(tmp_path, AMD)
    preloaded = cpu_blas.dispatch_environment(env, amd)
    assert preloaded is not None

    assert cpu_blas.dispatch_environment(env, _cpuinfo(tmp_path, INTEL)) is None
    assert cpu_blas.dispatch_environment({**env, cpu_blas.OPT_OUT: "stock"}, amd) is None
    assert cpu_blas.dispatch_environment(preloaded, amd) is None  # never preloaded twice
    failing = {"XDG_CACHE_HOME": str(tmp_path / "other"), "CC": "/bin/false"}
    assert cpu_blas.dispatch_environment(failing, amd) is None
    assert list((tmp_path / "other" / "whetstone").iterdir()) == []  # nothing half-built


def _auto_branch(env: dict[str, str]) -> int:
    """oneMKL's dispatch branch in a fresh process started with `env`."""
    script = textwrap.dedent(
        """
        import ctypes, os, torch
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        torch.randn(64, 64) @ torch.randn(64, 64)
        print(lib.mkl_serv_cbwr_get_auto_branch())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not (ON_AMD and HAS_COMPILER), reason="needs an AMD CPU and a C compiler")
def test_the_library_moves_onemkl_off_its_generic_branch(tmp_path: Path) -> None:
    import torch

    if "mkl" not in torch.__config__.show().lower():
        pytest.skip("this torch does not multiply with oneMKL")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    dispatched = cpu_blas.dispatch_environment(env)
    assert dispatched is not None

    assert _auto_branch(dispatched) > _auto_branch(env)
