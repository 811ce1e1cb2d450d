"""Karpenter on a created cluster: its controller role (Pod Identity), the GPU nodes' role
and access entry, the Helm chart, and the EC2NodeClass the GPU node pools use.

No interruption queue: the node pools are on-demand only (no Spot notices), and a trainer
checkpoints on SIGTERM wherever the node goes.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from infra.constants import (
    GPU_NODE_DISK_GB,
    KARPENTER_CHART,
    KARPENTER_NAMESPACE,
    KARPENTER_SERVICE_ACCOUNT,
    KARPENTER_VERSION,
    NODE_CLASS_NAME,
)
from infra.constructs.training_cluster import DISCOVERY_TAG
from infra.grants import acknowledge

Manifest = dict[str, Any]
POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"
# Bottlerocket's NVIDIA variants (picked for GPU instance types) carry the driver and the
# Kubernetes device plugin: no GPU operator to install.
AMI_ALIAS = "bottlerocket@latest"
_NODE_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)
_DESCRIBE_ACTIONS = (
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeCapacityReservations",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSubnets",
)


def node_class_manifest(
    cluster_name: str, node_role_name: str, security_group_id: str, name: str = NODE_CLASS_NAME
) -> Manifest:
    """GPU nodes: private subnets tagged for discovery, the cluster security group, an
    encrypted data volume for images and scratch, IMDSv2 out of the pods' reach."""
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": name},
        "spec": {
            "role": node_role_name,
            "amiSelectorTerms": [{"alias": AMI_ALIAS}],
            "subnetSelectorTerms": [{"tags": {DISCOVERY_TAG: cluster_name}}],
            "securityGroupSelectorTerms": [{"id": security_group_id}],
            "blockDeviceMappings": [
                {
                    "deviceName": "/dev/xvda",
                    "ebs": {"volumeSize": "4Gi", "volumeType": "gp3", "encrypted": True},
                },
                {
                    "deviceName": "/dev/xvdb",
                    "ebs": {
                        "volumeSize": f"{GPU_NODE_DISK_GB}Gi",
                        "volumeType": "gp3",
                        "encrypted": True,
                        "deleteOnTermination": True,
                    },
                },
            ],
            "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
            "tags": {"app": "whetstone"},
        },
    }


class Karpenter(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, cluster: eks.ICluster, cluster_name: str
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        name = cluster_name  # the fixed name, not the cluster's token: nag ids stay exact
        self.node_role = iam.Role(
            self,
            "NodeRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(policy)
                for policy in _NODE_MANAGED_POLICIES
            ],
            description="Whetstone GPU nodes that Karpenter launches",
        )
        for policy in _NODE_MANAGED_POLICIES:
            acknowledge(
                self.node_role,
                f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy}]",
                "The EKS worker node policies AWS maintains for nodes joining a cluster, "
                "running the VPC CNI, pulling images and Session Manager; pods get their own "
                "credentials from Pod Identity (IMDS is out of their reach).",
            )
        self.node_access = eks.CfnAccessEntry(
            self,
            "NodeAccess",
            cluster_name=name,
            principal_arn=self.node_role.role_arn,
            type="EC2_LINUX",
        )
        self.node_access.node.add_dependency(cluster)

        self.controller_role = iam.Role(
            self,
            "ControllerRole",
            assumed_by=iam.SessionTagsPrincipal(iam.ServicePrincipal(POD_IDENTITY_PRINCIPAL)),
            description="Karpenter controller of the Whetstone cluster (EKS Pod Identity)",
        )
        self._grant_controller(stack, name)
        self.controller_identity = eks.CfnPodIdentityAssociation(
            self,
            "ControllerIdentity",
            cluster_name=name,
            namespace=KARPENTER_NAMESPACE,
            service_account=KARPENTER_SERVICE_ACCOUNT,
            role_arn=self.controller_role.role_arn,
        )
        self.controller_identity.node.add_dependency(cluster)

        self.chart = eks.HelmChart(
            self,
            "Chart",
            cluster=cluster,
            chart="karpenter",
            repository=KARPENTER_CHART,
            version=KARPENTER_VERSION,
            namespace=KARPENTER_NAMESPACE,
            release="karpenter",
            wait=True,
            values={
                "settings": {"clusterName": name},
                "serviceAccount": {"name": KARPENTER_SERVICE_ACCOUNT},
                "controller": {
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "512Mi"},
                        "limits": {"memory": "1Gi"},
                    }
                },
            },
        )
        self.chart.node.add_dependency(self.controller_identity)
        self.node_class = eks.KubernetesManifest(
            self,
            "NodeClass",
            cluster=cluster,
            manifest=[
                node_class_manifest(
                    name, self.node_role.role_name, cluster.cluster_security_group_id
                )
            ],
            overwrite=True,
        )
        self.node_class.node.add_dependency(self.chart)
        self.node_class.node.add_dependency(self.node_access)

        self._acknowledge_controller()

    @property
    def ready(self) -> list[IConstruct]:
        """What a NodePool needs to exist first."""
        return [self.chart, self.node_class]

    def _grant_controller(self, stack: Stack, cluster_name: str) -> None:
        role = self.controller_role
        owned = f"aws:RequestTag/kubernetes.io/cluster/{cluster_name}"
        owned_resource = f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}"
        region = {"StringEquals": {"aws:RequestedRegion": Aws.REGION}}

        def ec2(resource: str) -> str:
            return stack.format_arn(service="ec2", resource=resource, resource_name="*")

        def ec2_global(resource: str) -> str:  # AMIs and snapshots are owned by AWS
            return f"arn:{Aws.PARTITION}:ec2:{Aws.REGION}::{resource}/*"

        launched = [
            ec2(kind)
            for kind in (
                "fleet",
                "instance",
                "volume",
                "network-interface",
                "launch-template",
                "spot-instances-request",
            )
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="LaunchFromSharedResources",
                actions=["ec2:RunInstances", "ec2:CreateFleet"],
                resources=[
                    ec2_global("image"),
                    ec2_global("snapshot"),
                    ec2("security-group"),
                    ec2("subnet"),
                    ec2("capacity-reservation"),
                ],
                conditions=region,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="LaunchOwnedResources",
                actions=["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
                resources=launched,
                conditions={
                    "StringEquals": {owned: "owned", "aws:RequestedRegion": Aws.REGION},
                    "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="LaunchFromOwnedTemplates",
                actions=["ec2:RunInstances", "ec2:CreateFleet"],
                resources=[ec2("launch-template")],
                conditions={"StringEquals": {owned_resource: "owned"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TagOnLaunch",
                actions=["ec2:CreateTags"],
                resources=launched,
                conditions={
                    "StringEquals": {
                        owned: "owned",
                        "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                    }
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TagOwnedInstances",
                actions=["ec2:CreateTags"],
                resources=[ec2("instance")],
                conditions={
                    "StringEquals": {owned_resource: "owned"},
                    "ForAllValues:StringEquals": {
                        "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                    },
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DeleteOwned",
                actions=["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                resources=[ec2("instance"), ec2("launch-template")],
                conditions={"StringEquals": {owned_resource: "owned"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="Describe", actions=list(_DESCRIBE_ACTIONS), resources=["*"], conditions=region
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="AmiParameters",
                actions=["ssm:GetParameter"],
                resources=[f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}::parameter/aws/service/*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(sid="Prices", actions=["pricing:GetProducts"], resources=["*"])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassNodeRole",
                actions=["iam:PassRole"],
                resources=[self.node_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            )
        )
        profiles = stack.format_arn(
            service="iam", region="", resource="instance-profile", resource_name="*"
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="CreateInstanceProfiles",
                actions=["iam:CreateInstanceProfile", "iam:TagInstanceProfile"],
                resources=[profiles],
                conditions={"StringEquals": {owned: "owned"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="OwnedInstanceProfiles",
                actions=[
                    "iam:AddRoleToInstanceProfile",
                    "iam:DeleteInstanceProfile",
                    "iam:RemoveRoleFromInstanceProfile",
                ],
                resources=[profiles],
                conditions={"StringEquals": {owned_resource: "owned"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadInstanceProfiles",
                actions=["iam:GetInstanceProfile", "iam:ListInstanceProfiles"],
                resources=[profiles],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="Cluster",
                actions=["eks:DescribeCluster"],
                resources=[
                    stack.format_arn(service="eks", resource="cluster", resource_name=cluster_name)
                ],
            )
        )

    def _acknowledge_controller(self) -> None:
        regional = "arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>"
        launch_reason = (
            "Karpenter launches, tags and deletes nodes whose ids exist only at run time; "
            "every statement on them requires the kubernetes.io/cluster/<cluster>=owned tag "
            "on the request or the resource (Karpenter's reference policy)."
        )
        for kind in ("fleet", "instance", "volume", "network-interface", "launch-template"):
            acknowledge(
                self.controller_role,
                f"AwsSolutions-IAM5[Resource::{regional}:{kind}/*]",
                launch_reason,
            )
        acknowledge(
            self.controller_role,
            f"AwsSolutions-IAM5[Resource::{regional}:spot-instances-request/*]",
            launch_reason,
        )
        for kind in ("security-group", "subnet", "capacity-reservation"):
            acknowledge(
                self.controller_role,
                f"AwsSolutions-IAM5[Resource::{regional}:{kind}/*]",
                "RunInstances/CreateFleet must name the subnet, security group and capacity "
                "reservation they use; the EC2NodeClass picks them, by tag, at run time.",
            )
        for kind in ("image", "snapshot"):
            acknowledge(
                self.controller_role,
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::{kind}/*]",
                "Node AMIs (and their snapshots) are AWS-owned Bottlerocket images whose ids "
                "change with every release; Karpenter resolves them from SSM at run time.",
            )
        acknowledge(
            self.controller_role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>::"
            "parameter/aws/service/*]",
            "The public SSM parameters AWS publishes AMI ids under (read only).",
        )
        acknowledge(
            self.controller_role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:"
            "instance-profile/*]",
            "Karpenter creates one instance profile per node class with a generated name; "
            "writes need the cluster's owned tag, reads are Get/List only.",
        )
        acknowledge(
            self.controller_role,
            "AwsSolutions-IAM5[Resource::*]",
            "EC2 Describe* calls and pricing:GetProducts take no resource; Describe* is "
            "limited to this region.",
        )
