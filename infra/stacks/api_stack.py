"""The REST API, its users, and the web console that calls it."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from constructs import Construct

from infra.constants import API_STAGE, CONSOLE_ASSETS_DIR, CONSOLE_SCOPES
from infra.constructs.console_access import (
    ConsoleSignIn,
    ConsoleUploads,
    cors_preflight,
    hosted_ui_origin,
    open_api_to_console,
)
from infra.constructs.console_site import ConsoleSite
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
        # The console's origin is the distribution's domain, which the API's CORS names.
        self.console = ConsoleSite(
            self,
            "Console",
            assets_dir=CONSOLE_ASSETS_DIR,
            api_origin=f"https://*.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}",
            sign_in_origin=hosted_ui_origin(),
        )
        self.jobs_api = JobsApi(
            self,
            "JobsApi",
            layers=layers,
            cluster_name=cluster_name,
            cors_preflight=cors_preflight(self.console.url),
        )
        CfnOutput(self, "ApiUrl", value=self.jobs_api.api.url)
        CfnOutput(self, "UserPoolId", value=self.jobs_api.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=self.jobs_api.client.user_pool_client_id)
        self._sign_in_to_console()

    def _sign_in_to_console(self) -> None:
        api = self.jobs_api.api
        self.console_sign_in = ConsoleSignIn(
            self, "ConsoleSignIn", user_pool=self.jobs_api.user_pool, console_url=self.console.url
        )
        client_id = self.console_sign_in.client.user_pool_client_id
        open_api_to_console(self.jobs_api, origin=self.console.url, client_id=client_id)
        ConsoleUploads(self, "ConsoleUploads", origin=self.console.url)
        # The contract of the console's config.json (docs/console.md, "aws").
        self.console.deploy(
            {
                "runtime": "aws",
                "apiBaseUrl": (
                    f"https://{api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}"
                    f"/{API_STAGE}"
                ),
                "auth": {
                    "type": "cognito",
                    "domain": self.console_sign_in.domain.base_url(),
                    "clientId": client_id,
                    "redirectUri": self.console_sign_in.redirect_uri,
                    "scopes": list(CONSOLE_SCOPES),
                },
            }
        )
        CfnOutput(self, "ConsoleUrl", value=self.console_sign_in.redirect_uri)
        CfnOutput(self, "ConsoleClientId", value=client_id)
