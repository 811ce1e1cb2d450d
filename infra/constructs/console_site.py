"""The web console's files: a private bucket that only CloudFront reads (origin access
control), served over HTTPS with security headers, every unknown path answered by
index.html (the console routes in the browser)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Annotations, DefaultStackSynthesizer, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.constants import (
    CONSOLE_CONFIG_FILE,
    CONSOLE_HSTS_MAX_AGE,
    CONSOLE_INDEX,
)
from infra.grants import acknowledge

# Shown when the synth found no built console: the stack still deploys (sign-in, CORS,
# config.json), and a later deploy after `make console` replaces this page.
PLACEHOLDER_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Whetstone</title>"
    "<p>The Whetstone console was not built when this stack was deployed. Run "
    "<code>make console</code>, then deploy the API stack again.</p></html>"
)
# The bucket answers 403 for a key it does not hold (CloudFront may not list it).
_SPA_STATUSES = (403, 404)


def content_security_policy(api_origin: str, sign_in_origin: str) -> str:
    """Scripts and styles from the console's own origin only; it talks to the API and the
    hosted UI's token endpoint, and uploads to the artifacts bucket by presigned URLs."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            f"connect-src 'self' {api_origin} {sign_in_origin} https://*.amazonaws.com",
            f"form-action 'self' {sign_in_origin}",
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "object-src 'none'",
        )
    )


class ConsoleSite(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        assets_dir: Path,
        api_origin: str,
        sign_in_origin: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.assets_dir = assets_dir
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=True,  # built files only: the next deploy puts them back
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "The console's built files, read only by CloudFront; the distribution's requests "
            "are the audit trail that matters (enable its standard logs to keep them).",
        )
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="Whetstone console: HSTS, CSP, no framing, no sniffing, no referrer",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=CONSOLE_HSTS_MAX_AGE,
                    include_subdomains=True,
                    override=True,
                ),
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(api_origin, sign_in_origin),
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Whetstone console",
            default_root_object=CONSOLE_INDEX,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
            ),
            error_responses=[
                cloudfront.ErrorResponse(
                    http_status=status,
                    response_http_status=200,
                    response_page_path=f"/{CONSOLE_INDEX}",
                )
                for status in _SPA_STATUSES
            ],
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )
        self.url = f"https://{self.distribution.distribution_domain_name}"
        for finding, reason in (
            ("AwsSolutions-CFR1", "The console is for the platform's users wherever they are."),
            (
                "AwsSolutions-CFR2",
                "Static files behind sign-in; the API it calls is throttled. A WAF web ACL "
                "(about $6/month idle) is left to the operator, as for the API.",
            ),
            (
                "AwsSolutions-CFR3",
                "Static files only; standard logs need a log bucket with ACLs, left to the "
                "operator. The API's access logs record every call the console makes.",
            ),
            (
                "AwsSolutions-CFR4",
                "The default *.cloudfront.net certificate allows no minimum TLS version; "
                "serve a custom domain with its own certificate to set TLSv1.2_2021.",
            ),
        ):
            acknowledge(self.distribution, finding, reason)

    def deploy(self, config: dict[str, Any]) -> s3deploy.BucketDeployment:
        """Upload the built console (or the placeholder page) and `config`, as config.json,
        and invalidate the distribution's cache."""
        if (self.assets_dir / CONSOLE_INDEX).is_file():
            files = s3deploy.Source.asset(str(self.assets_dir), exclude=[CONSOLE_CONFIG_FILE])
        else:
            Annotations.of(self).add_warning_v2(
                "whetstone:console-not-built",
                f"{self.assets_dir} has no {CONSOLE_INDEX}: the console's bucket gets a page "
                "that says so; run `make console` before deploying for the real console.",
            )
            files = s3deploy.Source.data(CONSOLE_INDEX, PLACEHOLDER_PAGE)
        deployment = s3deploy.BucketDeployment(
            self,
            "Files",
            destination_bucket=self.bucket,
            sources=[files, s3deploy.Source.json_data(CONSOLE_CONFIG_FILE, config)],
            distribution=self.distribution,
            # The files keep their names across builds' content: browsers revalidate.
            cache_control=[s3deploy.CacheControl.no_cache()],
        )
        _acknowledge_cdk_handlers(Stack.of(self), self.bucket)
        return deployment


def _acknowledge_cdk_handlers(stack: Stack, bucket: s3.Bucket) -> None:
    """The Lambdas CDK adds for the deployment and the bucket's emptying are singletons of
    the stack, outside this construct."""
    console_bucket = stack.get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
    assets_bucket = f"cdk-{DefaultStackSynthesizer.DEFAULT_QUALIFIER}-assets"
    copies = "CDK's deployment handler copies the asset's files into the console's bucket."
    for child in stack.node.children:
        if not child.node.id.startswith("Custom::CDKBucketDeployment"):
            continue
        for finding, reason in (
            (
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                "service-role/AWSLambdaBasicExecutionRole]",
                "CDK's own deployment handler; the managed policy only writes its logs.",
            ),
            (
                "AwsSolutions-IAM5[Resource::*]",
                "CDK's deployment handler: CloudFront invalidations take no resource.",
            ),
            ("AwsSolutions-L1", "CDK's handler; its runtime is chosen by aws-cdk-lib."),
            ("AwsSolutions-IAM5[Action::s3:GetObject*]", copies),
            ("AwsSolutions-IAM5[Action::s3:GetBucket*]", copies),
            ("AwsSolutions-IAM5[Action::s3:List*]", copies),
            ("AwsSolutions-IAM5[Action::s3:DeleteObject*]", copies + " (and prunes old ones)"),
            ("AwsSolutions-IAM5[Action::s3:Abort*]", copies),
            (f"AwsSolutions-IAM5[Resource::<{console_bucket}.Arn>/*]", copies),
            (
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{assets_bucket}"
                "-<AWS::AccountId>-<AWS::Region>/*]",
                "CDK's deployment handler reads the console's files from CDK's asset bucket.",
            ),
        ):
            acknowledge(child, finding, reason)
