"""The API stack: the Lambda authorizer on every method, throttling, access logs, binary
bodies."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from infra.constants import (
    API_K8S_GROUP,
    API_NAME,
    API_THROTTLE_BURST,
    API_THROTTLE_RATE,
    AUTHORIZER_HANDLER,
    DEFAULT_CLUSTER_NAME,
    ORG_REQUESTS_PER_WINDOW,
    ORG_THROTTLE_WINDOW_S,
)

STACK = "WhetstoneApi"


def test_multipart_bodies_arrive_base64_encoded(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApiGateway::RestApi", {"BinaryMediaTypes": ["multipart/form-data"]}
    )


def test_every_method_has_the_lambda_authorizer(synthesized: Any) -> None:
    # Given the API's one authorizer
    (name, authorizer) = next(
        iter(synthesized.resources(STACK, "AWS::ApiGateway::Authorizer").items())
    )
    assert len(synthesized.resources(STACK, "AWS::ApiGateway::Authorizer")) == 1

    # When the methods are read
    methods = synthesized.resources(STACK, "AWS::ApiGateway::Method").values()

    # Then every one of them, /v1 and the rest, has it, but the CORS preflights, which
    # browsers send without credentials and API Gateway answers itself
    preflights = [m for m in methods if m["Properties"]["HttpMethod"] == "OPTIONS"]
    assert len(preflights) == 2
    for preflight in preflights:
        assert preflight["Properties"]["AuthorizationType"] == "NONE"
        assert preflight["Properties"]["Integration"]["Type"] == "MOCK"
    methods = [m for m in methods if m not in preflights]
    assert methods
    for method in methods:
        assert method["Properties"]["AuthorizationType"] == "CUSTOM"
        assert method["Properties"]["AuthorizerId"] == {"Ref": name}
    assert authorizer["Properties"]["Type"] == "TOKEN"
    assert authorizer["Properties"]["IdentitySource"] == "method.request.header.Authorization"
    assert authorizer["Properties"]["AuthorizerResultTtlInSeconds"] == 60


def test_the_authorizer_knows_the_user_pool_and_reads_only_keys(synthesized: Any) -> None:
    # Given the authorizer's function
    functions = synthesized.resources(STACK, "AWS::Lambda::Function").values()
    (function,) = [f for f in functions if f["Properties"]["Handler"] == AUTHORIZER_HANDLER]
    variables = function["Properties"]["Environment"]["Variables"]

    # Then it verifies tokens of the pool and its client, and may only get and touch items
    assert "Ref" in variables["WHETSTONE_USER_POOL_ID"]
    assert "Ref" in variables["WHETSTONE_USER_POOL_CLIENT_ID"]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    (policy,) = [
        p
        for p in synthesized.resources(STACK, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role}]
    ]
    actions = sorted(
        action
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
        if action.startswith("dynamodb:") or action.startswith("s3:")
    )
    assert actions == ["dynamodb:GetItem", "dynamodb:UpdateItem"]


def test_stage_is_throttled_traced_and_access_logged(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "TracingEnabled": True,
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "ThrottlingRateLimit": API_THROTTLE_RATE,
                            "ThrottlingBurstLimit": API_THROTTLE_BURST,
                        }
                    )
                ]
            ),
        },
    )


def test_the_api_lambda_throttles_each_organization(template: Template) -> None:
    # Given the stage-wide limit above, the API Lambda also limits each organization
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Description": "Whetstone REST API",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "WHETSTONE_ORG_REQUESTS_PER_WINDOW": str(ORG_REQUESTS_PER_WINDOW),
                        "WHETSTONE_ORG_THROTTLE_WINDOW_S": str(ORG_THROTTLE_WINDOW_S),
                    }
                )
            },
        },
    )
    assert ORG_REQUESTS_PER_WINDOW / ORG_THROTTLE_WINDOW_S < API_THROTTLE_RATE


def test_users_carry_an_organization_they_cannot_change(synthesized: Any) -> None:
    (pool,) = synthesized.resources(STACK, "AWS::Cognito::UserPool").values()
    schema = {a["Name"]: a for a in pool["Properties"]["Schema"]}
    assert "organization" in schema
    assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    clients = synthesized.resources(STACK, "AWS::Cognito::UserPoolClient").values()
    assert len(clients) == 2  # the CLI's, the console's
    for client in clients:
        assert "custom:organization" in client["Properties"]["ReadAttributes"]
        assert "custom:organization" not in client["Properties"]["WriteAttributes"]


def test_api_lambda_reaches_the_cluster_through_the_api_group(template: Template) -> None:
    template.resource_count_is("AWS::EKS::AccessEntry", 1)
    template.has_resource_properties(
        "AWS::EKS::AccessEntry",
        {
            "ClusterName": DEFAULT_CLUSTER_NAME,
            "KubernetesGroups": [API_K8S_GROUP],
            "PrincipalArn": Match.any_value(),
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "WHETSTONE_CLUSTER_NAME": DEFAULT_CLUSTER_NAME,
                        "WHETSTONE_TRAINER_ROLE_ARN": Match.any_value(),
                    }
                )
            }
        },
    )


def test_rest_api_has_the_name_the_dashboard_reads(template: Template) -> None:
    template.has_resource_properties("AWS::ApiGateway::RestApi", {"Name": API_NAME})


def test_api_lambda_may_pass_only_the_trainer_role_to_pod_identity(synthesized: Any) -> None:
    statements = [
        statement
        for policy in synthesized.resources(STACK, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (pass_role,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert "role/whetstone-trainer-" in json.dumps(pass_role["Resource"])
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "pods.eks.amazonaws.com"}
    }
