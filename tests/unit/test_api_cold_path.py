"""What a cold API Lambda pays for at import: no heavy packages and no model schemas.

bench/api_latency.py measures the time; these tests keep the causes out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Built at import on purpose: the catalog tables are model instances, and the settings
# are read on the first request anyway.
BUILT_AT_IMPORT = {
    "whetstone.core.catalog.hardware.GpuInfo",
    "whetstone.core.catalog.hardware.InstanceOption",
    "whetstone.core.catalog.model_facts.BaseModelInfo",
    "whetstone.core.catalog.model_facts.ModelArchitecture",
    "whetstone.settings.Settings",
}

_PROBE = """
import json, sys
import functions.api
from pydantic import BaseModel

def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)

built = sorted(
    f"{cls.__module__}.{cls.__qualname__}"
    for cls in set(subclasses(BaseModel))
    if cls.__module__.startswith("whetstone.") and cls.__pydantic_complete__
)
heavy = ("torch", "transformers", "kubernetes", "aws_xray_sdk", "boto3")
print(json.dumps({"built": built, "heavy": sorted(m for m in heavy if m in sys.modules)}))
"""


def _probe() -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    result: dict[str, list[str]] = json.loads(out)
    return result


def test_the_api_module_imports_no_heavy_package_and_builds_no_request_schema() -> None:
    probe = _probe()

    assert probe["heavy"] == []
    assert set(probe["built"]) <= BUILT_AT_IMPORT, (
        "these models build their schema at import; derive them from DeferredModel: "
        f"{sorted(set(probe['built']) - BUILT_AT_IMPORT)}"
    )
