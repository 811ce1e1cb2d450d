"""What each stack deploys, counted by resource type: a change that adds or drops a resource
of a listed type shows here, stack by stack."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from infra.constructs.job_metrics import JOB_STATUS_LINES, JOB_USAGE_FIELDS

INVENTORY: dict[str, dict[str, int]] = {
    "WhetstoneData": {
        "AWS::DynamoDB::GlobalTable": 1,
        "AWS::S3::Bucket": 1,
        "AWS::S3::BucketPolicy": 1,
        "AWS::Logs::LogGroup": 1,
    },
    "WhetstoneCompute": {
        "AWS::EKS::Cluster": 1,
        "AWS::EKS::Nodegroup": 1,  # system nodes; GPU nodes come from Karpenter
        "AWS::EKS::Addon": 3,  # Pod Identity agent, CloudWatch observability, VPC CNI (policies)
        "AWS::EKS::AccessEntry": 2,  # CDK's kubectl role, Karpenter's GPU nodes
        "AWS::EKS::PodIdentityAssociation": 1,  # Karpenter's controller
        "AWS::EC2::VPC": 1,
        "AWS::EC2::NatGateway": 1,
        "AWS::EC2::FlowLog": 1,
        "Custom::AWSCDK-EKS-HelmChart": 1,  # Karpenter
        "Custom::AWSCDK-EKS-KubernetesResource": 3,  # node class, node pools, RBAC
        # flow logs, cluster, kubectl handler and its framework, system nodes, GPU nodes,
        # Karpenter, log agent, trainer, serving
        "AWS::IAM::Role": 10,
    },
    "WhetstoneWorkflow": {
        "AWS::StepFunctions::StateMachine": 1,
        "AWS::Events::EventBus": 1,
        "AWS::Events::Rule": 2,  # trainer events, reconciler schedule
        # 11 steps + ingest + reconciler + S3 drop + CDK's bucket notifications handler
        "AWS::Lambda::Function": 15,
        "AWS::Lambda::LayerVersion": 1,
        "Custom::S3BucketNotifications": 1,
    },
    "WhetstoneApi": {
        "AWS::ApiGateway::RestApi": 1,
        "AWS::ApiGateway::Stage": 1,
        "AWS::ApiGateway::Authorizer": 1,
        "AWS::Cognito::UserPool": 1,
        "AWS::Cognito::UserPoolClient": 2,  # the CLI's, the console's
        "AWS::Cognito::UserPoolDomain": 1,  # the console's hosted UI
        "AWS::ApiGateway::GatewayResponse": 2,  # 4xx and 5xx with the console's CORS origin
        "AWS::S3::Bucket": 1,  # the console's files
        "AWS::CloudFront::Distribution": 1,
        "AWS::CloudFront::OriginAccessControl": 1,
        "Custom::CDKBucketDeployment": 1,
        "Custom::AWS": 1,  # the artifacts bucket's CORS for the console's uploads
        # the API, its authorizer, CDK's handlers of the console's files, of its bucket and
        # of the CORS call
        "AWS::Lambda::Function": 5,
        "AWS::IAM::Role": 5,
    },
    "WhetstoneObservability": {
        "AWS::CloudWatch::Dashboard": 1,
        "AWS::Logs::MetricFilter": len(JOB_STATUS_LINES) + len(JOB_USAGE_FIELDS),
        "AWS::CloudWatch::Alarm": 7,
        "AWS::SNS::Topic": 1,
    },
}


@pytest.mark.parametrize("stack", INVENTORY)
def test_stack_deploys_the_listed_number_of_each_resource_type(
    synthesized: Any, stack: str
) -> None:
    counts = Counter(r["Type"] for r in synthesized.templates[stack]["Resources"].values())
    assert {kind: counts[kind] for kind in INVENTORY[stack]} == INVENTORY[stack]
