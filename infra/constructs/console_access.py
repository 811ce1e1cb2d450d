"""What lets the console, served from its CloudFront origin, sign in and call the API: the
user pool's hosted UI and a public app client (authorization code with PKCE), and CORS on
the API for that origin alone."""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.constants import (
    CONSOLE_DOMAIN_PREFIX,
    CONSOLE_SCOPES,
)
from infra.constructs.jobs_api import JobsApi, user_client_options
from infra.grants import acknowledge, artifacts_bucket_name

# The console sends its ID token (the authorizer reads the organization from it), JSON or
# multipart bodies, and a job's Idempotency-Key; the rest are headers CORS lets through.
_CORS_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")
_CORS_MAX_AGE = Duration.minutes(10)
# Answers API Gateway gives itself (a refused token, throttling) carry the header too, so
# the console can read why.
_GATEWAY_RESPONSES = (apigw.ResponseType.DEFAULT_4_XX, apigw.ResponseType.DEFAULT_5_XX)
_SCOPES = {"openid": cognito.OAuthScope.OPENID, "email": cognito.OAuthScope.EMAIL}
# The console only signs in through the hosted UI and refreshes its tokens.
_EXPLICIT_AUTH_FLOWS = ["ALLOW_REFRESH_TOKEN_AUTH"]


def hosted_ui_domain_prefix() -> str:
    return f"{CONSOLE_DOMAIN_PREFIX}-{Aws.ACCOUNT_ID}"


def hosted_ui_origin() -> str:
    """The hosted UI's origin, known before the domain exists (the console's CSP names it)."""
    return f"https://{hosted_ui_domain_prefix()}.auth.{Aws.REGION}.amazoncognito.com"


class ConsoleSignIn(Construct):
    """The hosted UI's domain on the user pool, and the console's app client: no secret (a
    browser cannot keep one, so Cognito requires PKCE's verifier instead), authorization
    code only, redirecting back to the console's URL only."""

    def __init__(
        self, scope: Construct, construct_id: str, *, user_pool: cognito.UserPool, console_url: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.domain = user_pool.add_domain(
            "ConsoleDomain",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=hosted_ui_domain_prefix()),
        )
        self.redirect_uri = f"{console_url}/"
        self.client = user_pool.add_client(
            "Console",
            generate_secret=False,
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[_SCOPES[scope] for scope in CONSOLE_SCOPES],
                callback_urls=[self.redirect_uri],
                logout_urls=[self.redirect_uri],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            **user_client_options(),
        )
        client = self.client.node.default_child
        assert isinstance(client, cognito.CfnUserPoolClient)
        client.explicit_auth_flows = _EXPLICIT_AUTH_FLOWS
        self.sign_in_origin = self.domain.base_url()


def cors_preflight(origin: str) -> apigw.CorsOptions:
    """The API's preflight answers (JobsApi's `cors_origin`): `origin` alone."""
    return apigw.CorsOptions(
        allow_origins=[origin],
        allow_headers=list(_CORS_HEADERS),
        allow_methods=apigw.Cors.ALL_METHODS,
        max_age=_CORS_MAX_AGE,
    )


def open_api_to_console(jobs_api: JobsApi, *, origin: str, client_id: str) -> None:
    """CORS for `origin` alone on what the preflights do not cover (the Lambda's answers,
    the gateway's own), and the authorizer accepts ID tokens issued to the console's
    client as well as the CLI's."""
    api = jobs_api.api
    for resource in (api.root, api.root.get_resource("{proxy+}")):
        assert resource is not None
        preflight = resource.node.find_child("OPTIONS")
        for finding in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
            acknowledge(
                preflight,
                finding,
                "A CORS preflight: browsers send OPTIONS without credentials; the mock "
                "integration only answers which origin, methods and headers are allowed.",
            )
    for response_type in _GATEWAY_RESPONSES:
        api.add_gateway_response(
            f"Cors{response_type.response_type}",
            type=response_type,
            response_headers={"Access-Control-Allow-Origin": f"'{origin}'", "Vary": "'Origin'"},
        )
    jobs_api.handler.function.add_environment("WHETSTONE_CONSOLE_ORIGIN", origin)
    jobs_api.authorizer_function.function.add_environment("WHETSTONE_CONSOLE_CLIENT_ID", client_id)


class ConsoleUploads(Construct):
    """CORS on the artifacts bucket for the console's origin, so the browser can PUT a large
    dataset to the presigned URL the API issues. The data stack deploys before the
    console's origin exists, so this stack sets the bucket's CORS rules (and removes them
    with itself); the data stack defines none."""

    def __init__(self, scope: Construct, construct_id: str, *, origin: str) -> None:
        super().__init__(scope, construct_id)
        bucket = artifacts_bucket_name()
        rules = [
            {
                "AllowedOrigins": [origin],
                "AllowedMethods": ["PUT", "GET", "HEAD"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": int(_CORS_MAX_AGE.to_seconds()),
            }
        ]
        self.resource = cr.AwsCustomResource(
            self,
            "ArtifactsBucketCors",
            on_update=cr.AwsSdkCall(
                service="S3",
                action="putBucketCors",
                parameters={"Bucket": bucket, "CORSConfiguration": {"CORSRules": rules}},
                physical_resource_id=cr.PhysicalResourceId.of(f"{bucket}-console-cors"),
            ),
            on_delete=cr.AwsSdkCall(
                service="S3", action="deleteBucketCors", parameters={"Bucket": bucket}
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["s3:PutBucketCORS"],
                        resources=[f"arn:{Aws.PARTITION}:s3:::{bucket}"],
                    )
                ]
            ),
            install_latest_aws_sdk=False,
        )
        for child in Stack.of(self).node.children:
            if child.node.id.startswith("AWS679f53fac002430cb0da5b7982bd2287"):
                acknowledge(
                    child,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                    "service-role/AWSLambdaBasicExecutionRole]",
                    "CDK's own AwsCustomResource handler; the managed policy only writes logs.",
                )
                acknowledge(
                    child, "AwsSolutions-L1", "CDK's handler; its runtime is chosen by aws-cdk-lib."
                )
