"""The EKS cluster (created or imported), Karpenter's GPU node pools, RBAC, the trainer and
serving roles."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct, IConstruct

from infra.constants import NODE_CLASS_NAME
from infra.constructs.cluster_log_agent import ClusterLogAgent
from infra.constructs.cluster_rbac import ClusterRbac
from infra.constructs.gpu_node_pools import GpuNodePools
from infra.constructs.karpenter import Karpenter
from infra.constructs.serving_role import ServingRole
from infra.constructs.trainer_role import TrainerRole
from infra.constructs.training_cluster import TrainingCluster


class ComputeStack(Stack):
    """`create_cluster`: a new cluster with Karpenter and the log agent. Otherwise the
    existing `cluster_name`, which must already run Karpenter v1 with the EC2NodeClass
    `node_class`, the Pod Identity agent, and access entries (authentication mode API)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster_name: str,
        create_cluster: bool,
        node_class: str | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.training_cluster = TrainingCluster(
            self, "Training", cluster_name=cluster_name, create=create_cluster
        )
        cluster = self.training_cluster.cluster
        # Created: nodes and the Pod Identity agent; imported: the kubectl provider's access.
        ready = self.training_cluster.system_ready
        pools_after: list[IConstruct] = list(ready)
        if create_cluster:
            self.karpenter = Karpenter(
                self, "Karpenter", cluster=cluster, cluster_name=cluster_name
            )
            self.karpenter.chart.node.add_dependency(*ready)
            pools_after = self.karpenter.ready
            self.log_agent = ClusterLogAgent(
                self, "LogAgent", cluster_name=cluster_name, after=ready
            )
        self.node_pools = GpuNodePools(
            self,
            "GpuNodePools",
            cluster=cluster,
            node_class=node_class or NODE_CLASS_NAME,
            after=pools_after,
        )
        self.rbac = ClusterRbac(self, "Rbac", cluster=cluster)
        self.rbac.manifest.node.add_dependency(*ready)
        self.trainer_role = TrainerRole(self, "TrainerRole", cluster_name=cluster_name)
        CfnOutput(self, "ClusterName", value=cluster_name)
        CfnOutput(self, "TrainerRoleArn", value=self.trainer_role.role.role_arn)
        self.serving_role = ServingRole(self, "ServingRole", cluster_name=cluster_name)
        CfnOutput(self, "ServingRoleArn", value=self.serving_role.role.role_arn)
