"""The layer of third-party packages the Lambdas import (pydantic, powertools, kubernetes)."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Annotations
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.lambda_code import LAMBDA_RUNTIME


class DependenciesLayer(Construct):
    """From a folder the deploy step fills with `pip install -t <dir>/python` (docs/infra.md).

    Without the folder (a plain offline synth) there is no layer, and a warning says that
    such a template must not be deployed.
    """

    def __init__(self, scope: Construct, construct_id: str, *, layer_dir: str | None) -> None:
        super().__init__(scope, construct_id)
        self.layers: list[lambda_.ILayerVersion] = []
        if layer_dir and (Path(layer_dir) / "python").is_dir():
            self.layers.append(
                lambda_.LayerVersion(
                    self,
                    "Layer",
                    code=lambda_.Code.from_asset(layer_dir),
                    compatible_runtimes=[LAMBDA_RUNTIME],
                    compatible_architectures=[lambda_.Architecture.X86_64],
                    description="Whetstone Lambda dependencies (pip install -t)",
                )
            )
        else:
            Annotations.of(self).add_warning_v2(
                "whetstone:no-dependencies-layer",
                "no dependencies layer: build one (docs/infra.md) and pass "
                "-c whetstone:dependencies_layer_dir=<dir> before deploying",
            )
