"""The EKS cluster trainers run on: created (VPC, system node group, add-ons) or imported."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from aws_cdk import Aws, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer
from constructs import Construct, IConstruct

from infra.constants import (
    CLUSTER_AZS,
    CLUSTER_LOG_RETENTION,
    CTX_ENDPOINT_ACCESS,
    KUBERNETES_VERSION,
    POD_IDENTITY_ADDON,
    SYSTEM_NODE_TYPE,
    SYSTEM_NODES,
    VPC_CNI_ADDON,
)
from infra.constructs.log_groups import service_log_group
from infra.grants import acknowledge

# Karpenter finds the subnets of GPU nodes by this tag (the EC2NodeClass selects on it).
DISCOVERY_TAG = "karpenter.sh/discovery"


@dataclass(frozen=True)
class EndpointSetting:
    """The API endpoint the `whetstone:endpoint_access` context asks for."""

    public: bool = True
    public_cidrs: tuple[str, ...] = ()  # empty: any address

    @classmethod
    def parse(cls, setting: str | None) -> EndpointSetting:
        """ "public" (or nothing), "private", or comma-separated CIDRs the public endpoint
        admits."""
        choice = (setting or "public").strip()
        if choice == "public":
            return cls()
        if choice == "private":
            return cls(public=False)
        return cls(public_cidrs=tuple(c.strip() for c in choice.split(",") if c.strip()))

    def access(self) -> eks.EndpointAccess:
        """The cluster's endpoint access; the private endpoint is always on."""
        if not self.public:
            return eks.EndpointAccess.PRIVATE
        if self.public_cidrs:
            return eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from(*self.public_cidrs)
        return eks.EndpointAccess.PUBLIC_AND_PRIVATE


class TrainingCluster(Construct):
    """`create=True`: a VPC (private subnets, one NAT gateway), the cluster with every control
    plane log type, a small system node group for Karpenter, CoreDNS and the log agent, and
    the Pod Identity agent. `create=False`: the existing cluster `cluster_name`, imported."""

    def __init__(
        self, scope: Construct, construct_id: str, *, cluster_name: str, create: bool
    ) -> None:
        super().__init__(scope, construct_id)
        # Every manifest (NodePools, RBAC, Karpenter's chart) goes through this kubectl layer.
        layer = KubectlV35Layer(self, "KubectlLayer")
        self.vpc: ec2.Vpc | None = None
        # What in-cluster objects wait for: a created cluster's nodes and Pod Identity agent, or
        # an imported cluster's access entry of the kubectl provider.
        self.system_ready: list[IConstruct] = []
        self.cluster: eks.ICluster
        if not create:
            self.cluster = self._import(cluster_name, layer)
            return
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=CLUSTER_AZS,
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC),
                ec2.SubnetConfiguration(
                    name="nodes", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=19
                ),
            ],
        )
        flow_logs = service_log_group(self, "FlowLogs", CLUSTER_LOG_RETENTION)
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        for subnet in self.vpc.private_subnets:
            subnet.node.default_child.tags.set_tag(DISCOVERY_TAG, cluster_name)  # type: ignore[union-attr]
        # EKS writes control plane logs to this group; made first, it gets a retention.
        control_plane_logs = service_log_group(
            self,
            "ControlPlaneLogs",
            CLUSTER_LOG_RETENTION,
            name=f"/aws/eks/{cluster_name}/cluster",
        )
        cluster = eks.Cluster(
            self,
            "Cluster",
            cluster_name=cluster_name,
            version=eks.KubernetesVersion.of(KUBERNETES_VERSION),
            vpc=self.vpc,
            vpc_subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)],
            # The Lambdas run outside the VPC and reach the API server by its public endpoint;
            # the context may close it or narrow it (docs/infra.md says what that costs).
            endpoint_access=EndpointSetting.parse(
                self.node.try_get_context(CTX_ENDPOINT_ACCESS)
            ).access(),
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,
            cluster_logging=[
                eks.ClusterLoggingTypes.API,
                eks.ClusterLoggingTypes.AUDIT,
                eks.ClusterLoggingTypes.AUTHENTICATOR,
                eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
                eks.ClusterLoggingTypes.SCHEDULER,
            ],
            kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=layer),
        )
        cluster.node.add_dependency(control_plane_logs)
        # jsii's ICluster protocol misses a member Cluster has under another type.
        self.cluster = cast(eks.ICluster, cluster)
        nodegroup = cluster.add_nodegroup_capacity(
            "System",
            instance_types=[ec2.InstanceType(SYSTEM_NODE_TYPE)],
            min_size=SYSTEM_NODES,
            desired_size=SYSTEM_NODES,
            max_size=SYSTEM_NODES + 1,
            ami_type=eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            labels={"whetstone.dev/role": "system"},
        )
        pod_identity_agent = eks.Addon(
            self, "PodIdentityAgent", cluster=self.cluster, addon_name=POD_IDENTITY_ADDON
        )
        pod_identity_agent.node.add_dependency(nodegroup)
        # The VPC CNI's network policy agent enforces the organizations' NetworkPolicies.
        vpc_cni = eks.Addon(
            self,
            "VpcCni",
            cluster=self.cluster,
            addon_name=VPC_CNI_ADDON,
            configuration_values={"enableNetworkPolicy": "true"},
        )
        # EKS installed the CNI itself; the managed add-on takes over its settings.
        cast(eks.CfnAddon, vpc_cni.node.default_child).resolve_conflicts = "OVERWRITE"
        vpc_cni.node.add_dependency(nodegroup)
        self.system_ready = [nodegroup, pod_identity_agent, vpc_cni]
        self._acknowledge_cdk_roles()
        self._acknowledge_provider_invoke(cluster)
        acknowledge(
            cluster,
            "AwsSolutions-EKS1",
            "The workflow and API Lambdas run outside the VPC and call the Kubernetes API by "
            "its public endpoint; every request needs an IAM-signed token of a principal with "
            "an access entry, and Lambda has no fixed source address to allow-list.",
        )

    def _import(self, cluster_name: str, layer: KubectlV35Layer) -> eks.ICluster:
        """The existing cluster with a kubectl provider of this stack, made a cluster admin by
        an access entry (it applies the node pools and RBAC; the cluster must accept access
        entries: authentication mode API or API_AND_CONFIG_MAP)."""
        named = eks.Cluster.from_cluster_attributes(self, "Named", cluster_name=cluster_name)
        provider = eks.KubectlProvider(self, "KubectlProvider", cluster=named, kubectl_layer=layer)
        admin = eks.CfnAccessEntry(
            self,
            "KubectlAccess",
            cluster_name=cluster_name,
            principal_arn=cast(iam.IRole, provider.role).role_arn,
            type="STANDARD",
            access_policies=[
                eks.CfnAccessEntry.AccessPolicyProperty(
                    policy_arn=f"arn:{Aws.PARTITION}:eks::aws:cluster-access-policy/"
                    "AmazonEKSClusterAdminPolicy",
                    access_scope=eks.CfnAccessEntry.AccessScopeProperty(type="cluster"),
                )
            ],
        )
        self.system_ready = [admin]
        self._acknowledge_cdk_roles()
        self._acknowledge_provider_invoke(self)
        return eks.Cluster.from_cluster_attributes(
            self, "Cluster", cluster_name=cluster_name, kubectl_provider=provider
        )

    def _acknowledge_cdk_roles(self) -> None:
        """The roles CDK's EKS constructs make: the cluster's, the system nodes', and the
        kubectl provider's (a CloudFormation custom resource that applies manifests)."""
        managed = "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
        acknowledge(
            self,
            f"{managed}AmazonEKSClusterPolicy]",
            "The service role policy AWS maintains for every EKS control plane.",
        )
        for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy"):
            acknowledge(
                self,
                f"{managed}{policy}]",
                "The policies AWS maintains for nodes joining a cluster and running the VPC "
                "CNI (system nodes here).",
            )
        acknowledge(
            self,
            f"{managed}AmazonEC2ContainerRegistryReadOnly]",
            "Read-only image pulls for the system nodes and the kubectl provider (CDK's "
            "choice for its constructs).",
        )
        for policy in ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole"):
            acknowledge(
                self,
                f"{managed}service-role/{policy}]",
                "The kubectl provider's Lambdas (CDK's custom resource) write their logs and "
                "run in the cluster's VPC to reach its endpoint.",
            )
        acknowledge(
            self,
            "AwsSolutions-L1",
            "The kubectl provider's runtime is CDK's choice, bundled with its kubectl layer.",
        )

    def _acknowledge_provider_invoke(self, parent: IConstruct) -> None:
        stack = Stack.of(self)
        provider = parent.node.find_child("KubectlProvider")
        handler = provider.node.find_child("Handler")
        logical_id = stack.get_logical_id(handler.node.default_child)  # type: ignore[arg-type]
        condition = stack.get_logical_id(handler.node.find_child("HasEcrPublic"))  # type: ignore[arg-type]
        acknowledge(
            provider,
            f'AwsSolutions-IAM4[Policy::{{"Fn::If":["{condition}",{{"Fn::Join":["",["arn:",'
            '{"Ref":"AWS::Partition"},":iam::aws:policy/'
            'AmazonElasticContainerRegistryPublicReadOnly"]]},{"Ref":"AWS::NoValue"}]}]',
            "CDK's kubectl provider pulls public Helm charts (Karpenter's, from ECR Public) "
            "where the partition has ECR Public.",
        )
        acknowledge(
            provider,
            f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]",
            "lambda:InvokeFunction on the kubectl handler's versions and aliases (CDK's "
            "custom resource provider framework).",
        )
