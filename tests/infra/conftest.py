"""Synthesize the CDK app once per test session: every infra test reads this assembly."""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

# Without the `infra` extra (aws-cdk-lib, cdk-nag, cfn-lint) these tests are not collected.
if importlib.util.find_spec("aws_cdk") is None or importlib.util.find_spec("cdk_nag") is None:
    collect_ignore_glob = ["test_*.py"]

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")

STACKS = (
    "WhetstoneData",
    "WhetstoneBuild",
    "WhetstoneCompute",
    "WhetstoneWorkflow",
    "WhetstoneApi",
    "WhetstoneObservability",
)


@dataclass(frozen=True)
class Synthesized:
    outdir: Path
    templates: dict[str, dict[str, Any]]
    report: dict[str, Any]

    def resources(self, stack: str, kind: str) -> dict[str, dict[str, Any]]:
        return {
            name: resource
            for name, resource in self.templates[stack]["Resources"].items()
            if resource["Type"] == kind
        }


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    from aws_cdk import App

    from infra.app_builder import build_app
    from infra.constants import CTX_LAYER_DIR

    outdir = tmp_path_factory.mktemp("cdk.out")
    layer = tmp_path_factory.mktemp("layer")
    (layer / "python").mkdir()
    (layer / "python" / "README").write_text("the deploy step fills this folder\n")
    app = build_app(App(outdir=str(outdir), context={CTX_LAYER_DIR: str(layer)}))
    app.synth()  # the AwsSolutions checks run here and fail the synth on any finding
    templates = {
        stack: json.loads((outdir / f"{stack}.template.json").read_text()) for stack in STACKS
    }
    report = json.loads((outdir / "validation-report.json").read_text())
    return Synthesized(outdir=outdir, templates=templates, report=report)


@pytest.fixture(scope="module")
def template(synthesized: Synthesized, request: pytest.FixtureRequest) -> Template:
    """The assertions' view of the stack the test module names in its STACK."""
    from aws_cdk.assertions import Template

    return Template.from_json(synthesized.templates[request.module.STACK])
