"""The Lambda code asset: the repository's `whetstone/` and `functions/` packages only.

Staged into a fresh folder (no Docker, no network), so the asset hash depends on the
sources alone. Third-party dependencies go into a separate layer that the deploy step
builds with `pip install -t` (docs/infra.md).

The staged sources ship their bytecode: Lambda's file system is read-only, so without it
every cold start compiles the modules again (about 0.1 s of the API's, bench/api_latency.py).
"""

from __future__ import annotations

import atexit
import compileall
import py_compile
import shutil
import sys
import tempfile
from functools import cache
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

from infra.constants import LAMBDA_EXCLUDED_PARTS, LAMBDA_SOURCES, REPO_ROOT

LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_11


def _ignored(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in LAMBDA_EXCLUDED_PARTS or n.endswith(".pyc")}


@cache
def staged_sources() -> Path:
    """A folder holding a copy of each of LAMBDA_SOURCES, removed when the process exits."""
    staging = Path(tempfile.mkdtemp(prefix="whetstone-lambda-"))
    atexit.register(shutil.rmtree, staging, ignore_errors=True)
    for source in LAMBDA_SOURCES:
        shutil.copytree(REPO_ROOT / source, staging / source, ignore=_ignored)
    if LAMBDA_RUNTIME.name == f"python{sys.version_info.major}.{sys.version_info.minor}":
        # Checked by source hash, not time stamp: the same sources give the same asset.
        compileall.compile_dir(
            staging, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
    return staging


def function_code() -> lambda_.Code:
    return lambda_.Code.from_asset(str(staged_sources()))
