"""The Lambda code asset: the repository's `whetstone/` and `functions/` packages only.

Staged into a fresh folder (no Docker, no network), so the asset hash depends on the
sources alone. Third-party dependencies go into a separate layer that the deploy step
builds with `pip install -t` (docs/infra.md).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

from infra.constants import LAMBDA_EXCLUDED_PARTS, LAMBDA_SOURCES, REPO_ROOT


def _ignored(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in LAMBDA_EXCLUDED_PARTS or n.endswith(".pyc")}


@cache
def staged_sources() -> Path:
    """A folder holding a copy of each of LAMBDA_SOURCES, removed when the process exits."""
    staging = Path(tempfile.mkdtemp(prefix="whetstone-lambda-"))
    atexit.register(shutil.rmtree, staging, ignore_errors=True)
    for source in LAMBDA_SOURCES:
        shutil.copytree(REPO_ROOT / source, staging / source, ignore=_ignored)
    return staging


def function_code() -> lambda_.Code:
    return lambda_.Code.from_asset(str(staged_sources()))
