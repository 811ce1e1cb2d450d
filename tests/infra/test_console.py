"""The web console in aws (issue 17 item 5): a private bucket behind CloudFront, sign-in
with the hosted UI (authorization code + PKCE), CORS on the API for its origin alone, and
config.json telling the console all of it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from support.cfn_text import rendered

from infra.constants import API_HANDLER, AUTHORIZER_HANDLER, CONSOLE_CONFIG_FILE

STACK = "WhetstoneApi"
BUCKET = "whetstone-artifacts-${AWS::AccountId}-${AWS::Region}"


def one(synthesized: Any, kind: str) -> tuple[str, dict[str, Any]]:
    ((name, resource),) = synthesized.resources(STACK, kind).items()
    return name, rendered(resource["Properties"])


@pytest.fixture(scope="module")
def console_url(synthesized: Any) -> str:
    name, _ = one(synthesized, "AWS::CloudFront::Distribution")
    return f"https://${{{name}.DomainName}}"


def console_client(synthesized: Any) -> tuple[str, dict[str, Any]]:
    clients = synthesized.resources(STACK, "AWS::Cognito::UserPoolClient")
    ((name, client),) = [(n, c) for n, c in clients.items() if "Console" in n]
    return name, rendered(client["Properties"])


def function_environment(synthesized: Any, handler: str) -> dict[str, Any]:
    functions = synthesized.resources(STACK, "AWS::Lambda::Function").values()
    (function,) = [f for f in functions if f["Properties"].get("Handler") == handler]
    variables: dict[str, Any] = rendered(function["Properties"]["Environment"]["Variables"])
    return variables


def test_the_console_bucket_is_private_and_read_by_the_distribution_alone(
    synthesized: Any,
) -> None:
    # Given the console's bucket, its policy and the distribution
    bucket, properties = one(synthesized, "AWS::S3::Bucket")
    _, policy = one(synthesized, "AWS::S3::BucketPolicy")
    distribution, config = one(synthesized, "AWS::CloudFront::Distribution")
    oac, access_control = one(synthesized, "AWS::CloudFront::OriginAccessControl")

    # Then no public access, no website endpoint; the origin signs with origin access
    # control; and the only read the bucket grants is CloudFront's, for this distribution
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert "WebsiteConfiguration" not in properties
    assert access_control["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    (origin,) = config["DistributionConfig"]["Origins"]
    assert origin["OriginAccessControlId"] == f"${{{oac}.Id}}"
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    reads = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and "s3:GetObject" in s["Action"]
    ]
    assert reads == [
        {
            "Action": "s3:GetObject",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Resource": f"${{{bucket}.Arn}}/*",
            "Condition": {
                "StringEquals": {
                    "AWS:SourceArn": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:"
                    f"distribution/${{{distribution}}}"
                }
            },
        }
    ]


def test_the_distribution_serves_the_single_page_app_over_https_only(synthesized: Any) -> None:
    # Given the distribution
    _, properties = one(synthesized, "AWS::CloudFront::Distribution")
    config = properties["DistributionConfig"]

    # Then / is index.html, and so is any path the bucket does not hold (the console
    # routes in the browser); HTTP is refused, not redirected
    assert config["DefaultRootObject"] == "index.html"
    assert config["CustomErrorResponses"] == [
        {"ErrorCode": status, "ResponseCode": 200, "ResponsePagePath": "/index.html"}
        for status in (403, 404)
    ]
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "https-only"
    assert config["DefaultCacheBehavior"]["AllowedMethods"] == ["GET", "HEAD"]


def test_every_answer_of_the_distribution_carries_the_security_headers(synthesized: Any) -> None:
    # Given the response headers policy the distribution uses
    name, policy = one(synthesized, "AWS::CloudFront::ResponseHeadersPolicy")
    _, distribution = one(synthesized, "AWS::CloudFront::Distribution")
    behavior = distribution["DistributionConfig"]["DefaultCacheBehavior"]
    headers = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]

    # Then HSTS, no sniffing, no framing, no referrer, and a CSP of the console's own
    # scripts that may talk only to the API, the hosted UI and AWS endpoints
    assert behavior["ResponseHeadersPolicyId"] == f"${{{name}}}"
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"
    csp = dict(
        directive.split(" ", 1)
        for directive in headers["ContentSecurityPolicy"]["ContentSecurityPolicy"].split("; ")
    )
    assert csp["script-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["connect-src"].split() == [
        "'self'",
        "https://*.execute-api.${AWS::Region}.${AWS::URLSuffix}",
        "https://whetstone-${AWS::AccountId}.auth.${AWS::Region}.amazoncognito.com",
        "https://*.amazonaws.com",
    ]


def test_the_console_client_is_public_code_flow_only_back_to_the_distribution(
    synthesized: Any, console_url: str
) -> None:
    # Given the console's app client
    _, client = console_client(synthesized)

    # Then it has no secret (a public client: Cognito requires PKCE's verifier with the
    # code), only the authorization code grant with openid and email, it sends users back
    # to the console and nowhere else, and has no sign-in flow but the hosted UI
    assert client["GenerateSecret"] is False
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AllowedOAuthScopes"] == ["openid", "email"]
    assert client["CallbackURLs"] == [f"{console_url}/"]
    assert client["LogoutURLs"] == [f"{console_url}/"]
    assert client["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]


def test_the_cli_client_has_no_oauth_flow_on_the_hosted_ui(synthesized: Any) -> None:
    clients = synthesized.resources(STACK, "AWS::Cognito::UserPoolClient")
    ((_, cli),) = [(n, c) for n, c in clients.items() if "Cli" in n]
    assert cli["Properties"]["AllowedOAuthFlowsUserPoolClient"] is False
    assert "AllowedOAuthFlows" not in cli["Properties"]


def test_the_api_allows_the_console_origin_alone(synthesized: Any, console_url: str) -> None:
    # Given the preflights, the gateway's own answers and the API Lambda
    methods = rendered(synthesized.resources(STACK, "AWS::ApiGateway::Method")).values()
    preflights = [m["Properties"] for m in methods if m["Properties"]["HttpMethod"] == "OPTIONS"]
    gateway = rendered(synthesized.resources(STACK, "AWS::ApiGateway::GatewayResponse")).values()

    # Then each names the console's origin, and only it
    assert len(preflights) == 2
    for preflight in preflights:
        (answer,) = preflight["Integration"]["IntegrationResponses"]
        allowed = answer["ResponseParameters"]["method.response.header.Access-Control-Allow-Origin"]
        assert allowed == f"'{console_url}'"
        headers = answer["ResponseParameters"][
            "method.response.header.Access-Control-Allow-Headers"
        ]
        assert headers == "'Authorization,Content-Type,Idempotency-Key'"
    assert sorted(g["Properties"]["ResponseType"] for g in gateway) == [
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    ]
    for response in gateway:
        headers = response["Properties"]["ResponseParameters"]
        assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == f"'{console_url}'"
    assert function_environment(synthesized, API_HANDLER)["WHETSTONE_CONSOLE_ORIGIN"] == (
        console_url
    )


def test_the_artifacts_bucket_takes_presigned_uploads_from_the_console_alone(
    synthesized: Any, console_url: str
) -> None:
    # Given the call that sets the artifacts bucket's CORS rules, and the one that undoes it
    _, call = one(synthesized, "Custom::AWS")
    create, delete = json.loads(call["Create"]), json.loads(call["Delete"])

    # Then the bucket lets the console's origin, and only it, PUT to presigned URLs
    assert create["action"] == "putBucketCors"
    assert create["parameters"]["Bucket"] == BUCKET
    (rule,) = create["parameters"]["CORSConfiguration"]["CORSRules"]
    assert rule["AllowedOrigins"] == [console_url]
    assert "PUT" in rule["AllowedMethods"]
    assert delete == {
        "action": "deleteBucketCors",
        "service": "S3",
        "parameters": {"Bucket": BUCKET},
    }


def test_the_authorizer_accepts_the_console_clients_id_tokens(synthesized: Any) -> None:
    name, _ = console_client(synthesized)
    variables = function_environment(synthesized, AUTHORIZER_HANDLER)
    assert variables["WHETSTONE_CONSOLE_CLIENT_ID"] == f"${{{name}}}"


def test_config_json_tells_the_console_the_api_and_the_sign_in(
    synthesized: Any, console_url: str
) -> None:
    # Given the files the deployment puts in the console's bucket, with CDK's markers for
    # values known at deploy time
    _, deployment = one(synthesized, "Custom::CDKBucketDeployment")
    configs = [
        (synthesized.outdir / f"asset.{key.removesuffix('.zip')}" / CONSOLE_CONFIG_FILE, markers)
        for key, markers in zip(
            deployment["SourceObjectKeys"], deployment["SourceMarkers"], strict=True
        )
    ]
    ((path, markers),) = [(path, markers) for path, markers in configs if path.is_file()]

    # When the markers are replaced as the deployment does
    text = re.sub(r"<<marker:0xbaba:\d+>>", lambda m: markers[m.group(0)], path.read_text())
    config = json.loads(text)

    # Then it is the contract the console reads
    (rest_api, _) = one(synthesized, "AWS::ApiGateway::RestApi")
    (domain, _) = one(synthesized, "AWS::Cognito::UserPoolDomain")
    (client, _) = console_client(synthesized)
    assert config == {
        "runtime": "aws",
        "apiBaseUrl": f"https://${{{rest_api}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/v1",
        "auth": {
            "type": "cognito",
            "domain": f"https://${{{domain}}}.auth.${{AWS::Region}}.amazoncognito.com",
            "clientId": f"${{{client}}}",
            "redirectUri": f"{console_url}/",
            "scopes": ["openid", "email"],
        },
    }


def test_without_a_built_console_a_page_says_so(synthesized: Any) -> None:
    # Given the deployment's other source: the built console, or (this checkout has none
    # built) the placeholder page
    _, deployment = one(synthesized, "Custom::CDKBucketDeployment")
    folders = [
        synthesized.outdir / f"asset.{key.removesuffix('.zip')}"
        for key in deployment["SourceObjectKeys"]
    ]
    (files,) = [folder for folder in folders if not (folder / CONSOLE_CONFIG_FILE).is_file()]

    # Then it has index.html, and it never carries a config.json of its own
    assert (files / "index.html").is_file()
    assert not (files / CONSOLE_CONFIG_FILE).exists()
