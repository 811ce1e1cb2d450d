"""The REST API: Cognito users and their organizations' API keys, checked by one Lambda
authorizer on every method; one Lambda behind a proxy resource, throttled and logged."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constants import (
    ACCESS_LOG_RETENTION,
    API_HANDLER,
    API_K8S_GROUP,
    API_NAME,
    API_STAGE,
    API_THROTTLE_BURST,
    API_THROTTLE_RATE,
    AUTHORIZER_CACHE_TTL,
    AUTHORIZER_HANDLER,
    AUTHORIZER_TIMEOUT,
    BINARY_MEDIA_TYPES,
    LAMBDA_TIMEOUT,
    ORG_REQUESTS_PER_WINDOW,
    ORG_THROTTLE_WINDOW_S,
    TOKEN_VALIDITY,
    USER_ORG_ATTRIBUTE,
)
from infra.constructs.log_groups import service_log_group
from infra.constructs.python_function import PythonFunction
from infra.grants import (
    acknowledge,
    grant_api_key_lookup,
    grant_cluster_access,
    grant_pod_identity,
    grant_start_workflow,
    grant_task_callbacks,
    serving_role_arn,
    trainer_role_arn,
)


def user_client_options() -> dict[str, Any]:
    """What every app client of the user pool shares (the CLI's, the console's): token
    lifetimes, and the organization readable but never writable by its user."""
    return {
        "access_token_validity": TOKEN_VALIDITY,
        "id_token_validity": TOKEN_VALIDITY,
        "read_attributes": cognito.ClientAttributes()
        .with_standard_attributes(email=True)
        .with_custom_attributes(USER_ORG_ATTRIBUTE),
        "write_attributes": cognito.ClientAttributes().with_standard_attributes(email=True),
    }


class JobsApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        layers: list[lambda_.ILayerVersion],
        cluster_name: str,
        cors_preflight: apigw.CorsOptions | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # Users are created by an administrator, who sets their organization; users cannot
        # change it (the client's write attributes leave it out).
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            custom_attributes={
                USER_ORG_ATTRIBUTE: cognito.StringAttribute(min_len=1, max_len=64, mutable=True)
            },
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_digits=True,
                require_lowercase=True,
                require_uppercase=True,
                require_symbols=True,
            ),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # The CLI signs in with SRP; without OAuth it has no place in the hosted UI (the
        # console's domain), whose implicit flow CDK would otherwise allow it.
        self.client = self.user_pool.add_client(
            "Cli",
            auth_flows=cognito.AuthFlow(user_srp=True),
            disable_o_auth=True,
            generate_secret=False,
            **user_client_options(),
        )

        self.handler = PythonFunction(
            self,
            "Handler",
            handler=API_HANDLER,
            environment={
                # Deployments (vLLM) run in the organizations' namespaces of the cluster.
                "WHETSTONE_CLUSTER_NAME": cluster_name,
                "WHETSTONE_TRAINER_ROLE_ARN": trainer_role_arn(),
                "WHETSTONE_ORG_REQUESTS_PER_WINDOW": str(ORG_REQUESTS_PER_WINDOW),
                "WHETSTONE_ORG_THROTTLE_WINDOW_S": str(ORG_THROTTLE_WINDOW_S),
                "WHETSTONE_SERVING_ROLE_ARN": serving_role_arn(),
            },
            timeout=LAMBDA_TIMEOUT,
            layers=layers,
            description="Whetstone REST API",
        )
        grant_start_workflow(self.handler.role)
        grant_task_callbacks(self.handler.role)  # a stop ends the wait for a stage
        grant_cluster_access(self.handler.role, cluster_name, API_K8S_GROUP)
        # vLLM pods run under the job's service account with the trainer role (S3 model).
        grant_pod_identity(self.handler.role, cluster_name)

        self.access_logs = service_log_group(self, "AccessLogs", ACCESS_LOG_RETENTION)
        authorizer = self._authorizer(layers)
        self.api = apigw.LambdaRestApi(
            self,
            "Api",
            handler=self.handler.function,
            rest_api_name=API_NAME,
            proxy=True,
            binary_media_types=list(BINARY_MEDIA_TYPES),
            cloud_watch_role=False,
            endpoint_types=[apigw.EndpointType.REGIONAL],
            default_cors_preflight_options=cors_preflight,
            default_method_options=apigw.MethodOptions(
                authorizer=authorizer,
                authorization_type=apigw.AuthorizationType.CUSTOM,
            ),
            deploy_options=apigw.StageOptions(
                stage_name=API_STAGE,
                throttling_rate_limit=API_THROTTLE_RATE,
                throttling_burst_limit=API_THROTTLE_BURST,
                tracing_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG2",
            "The Lambda validates every body, path and query parameter against the pydantic "
            "models (powertools enable_validation) and answers 422; the proxy has no model.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG6",
            "Execution logging needs the account-wide API Gateway CloudWatch role, which a "
            "self-hosted stack should not overwrite; JSON access logs and X-Ray cover requests.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG3",
            "Every method needs a Cognito token or an API key and the stage is throttled; a "
            "WAF web ACL (about $6/month idle) is left to the operator.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-COG4",
            "Every method has the Lambda authorizer, which verifies this user pool's ID tokens "
            "(signature, issuer, client, expiry) or an organization's API key; API Gateway "
            "allows one authorizer per method, so a Cognito authorizer cannot take keys too.",
        )

    def _authorizer(self, layers: list[lambda_.ILayerVersion]) -> apigw.TokenAuthorizer:
        """functions/authorizer.py: reads the keys in the jobs' table, and nothing else."""
        self.authorizer_function = PythonFunction(
            self,
            "AuthorizerFunction",
            handler=AUTHORIZER_HANDLER,
            environment={
                "WHETSTONE_USER_POOL_ID": self.user_pool.user_pool_id,
                "WHETSTONE_USER_POOL_CLIENT_ID": self.client.user_pool_client_id,
            },
            timeout=AUTHORIZER_TIMEOUT,
            layers=layers,
            description="Whetstone API authorizer (Cognito ID tokens and API keys)",
            job_data=False,
        )
        grant_api_key_lookup(self.authorizer_function.role)
        return apigw.TokenAuthorizer(
            self,
            "TokenAuthorizer",
            handler=self.authorizer_function.function,
            identity_source=apigw.IdentitySource.header("Authorization"),
            results_cache_ttl=AUTHORIZER_CACHE_TTL,
        )
