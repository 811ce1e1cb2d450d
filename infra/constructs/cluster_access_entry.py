"""An EKS access entry: a Lambda's role → a Kubernetes group that infra.constructs.cluster_rbac
binds to exactly what the Lambda's adapter calls."""

from __future__ import annotations

from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct


class ClusterAccessEntry(Construct):
    """No EKS access policy: the narrowest (AmazonEKSEditPolicy) can neither create a
    namespace nor a ResourceQuota, and the one that can (AmazonEKSClusterAdminPolicy) can do
    everything. The group's ClusterRole lists the verbs instead. The cluster is named, not
    referenced: it lives in the compute stack, deployed first."""

    def __init__(
        self, scope: Construct, construct_id: str, *, role: iam.IRole, cluster_name: str, group: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.entry = eks.CfnAccessEntry(
            self,
            "Entry",
            cluster_name=cluster_name,
            principal_arn=role.role_arn,
            type="STANDARD",
            kubernetes_groups=[group],
        )
