"""The REST API and its users."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.constructs.dependencies_layer import DependenciesLayer
from infra.constructs.jobs_api import JobsApi


class ApiStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        layer_dir: str | None,
        cluster_name: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        layers = DependenciesLayer(self, "Dependencies", layer_dir=layer_dir).layers
        self.jobs_api = JobsApi(self, "JobsApi", layers=layers, cluster_name=cluster_name)
        CfnOutput(self, "ApiUrl", value=self.jobs_api.api.url)
        CfnOutput(self, "UserPoolId", value=self.jobs_api.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=self.jobs_api.client.user_pool_client_id)
