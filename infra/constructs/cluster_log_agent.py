"""The CloudWatch agent and Fluent Bit on every node (the amazon-cloudwatch-observability
add-on): container logs, trainers' included, and Container Insights metrics (GPU too)."""

from __future__ import annotations

from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from infra.constants import CLUSTER_LOG_ADDON, CLUSTER_LOG_SERVICE_ACCOUNT
from infra.grants import acknowledge

AGENT_POLICY = "CloudWatchAgentServerPolicy"


class ClusterLogAgent(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, cluster_name: str, after: list[IConstruct]
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.SessionTagsPrincipal(iam.ServicePrincipal("pods.eks.amazonaws.com")),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(AGENT_POLICY)],
            description="CloudWatch agent and Fluent Bit of the Whetstone cluster",
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{AGENT_POLICY}]",
            "The policy AWS maintains for the CloudWatch agent: log groups and streams are "
            "created per cluster and namespace at run time, and metrics go to a namespace "
            "that PutMetricData cannot scope by resource.",
        )
        # Its daemon sets tolerate every taint, so they run on the GPU nodes as well.
        self.addon = eks.CfnAddon(
            self,
            "Addon",
            cluster_name=cluster_name,
            addon_name=CLUSTER_LOG_ADDON,
            resolve_conflicts="OVERWRITE",
            pod_identity_associations=[
                eks.CfnAddon.PodIdentityAssociationProperty(
                    role_arn=self.role.role_arn, service_account=CLUSTER_LOG_SERVICE_ACCOUNT
                )
            ],
        )
        for dependency in after:
            self.addon.node.add_dependency(dependency)
