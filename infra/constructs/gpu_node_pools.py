"""One Karpenter NodePool per GPU type of the hardware catalog, each tainted for GPU pods,
and one CPU pool for the trainer's prepare and finalize stages.

The trainer pod (whetstone.adapters.aws.kube.training_manifests) selects its node by the
catalog's GPU-name and instance-family labels and tolerates GPU_TAINT_KEY; each pool offers
exactly the catalog's instance types of its GPU, on demand. Pools remove a node only when it
is empty: a running trainer is never consolidated away.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IConstruct

from infra.constants import GPU_NODE_EMPTY_AFTER, GPU_NODE_POOL_LIMIT
from whetstone.core.catalog.hardware import (
    CPU_POOL,
    CPU_POOL_LABEL,
    GPU_NAME_LABEL,
    GPU_TAINT_KEY,
    GPUS,
    GpuInfo,
)

Manifest = dict[str, Any]
NODE_POOL_API = "karpenter.sh/v1"
NODE_CLASS_GROUP = "karpenter.k8s.aws"
GPU_TYPE_LABEL = "whetstone.dev/gpu-type"
GPU_RESOURCE = "nvidia.com/gpu"


ON_DEMAND_AMD64 = (
    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
)


def _node_class_ref(node_class: str) -> Manifest:
    return {"group": NODE_CLASS_GROUP, "kind": "EC2NodeClass", "name": node_class}


def node_pool_name(gpu: GpuInfo) -> str:
    return f"whetstone-{gpu.gpu_type.value}"


def gpu_node_pool_manifest(gpu: GpuInfo, node_class: str) -> Manifest:
    return {
        "apiVersion": NODE_POOL_API,
        "kind": "NodePool",
        "metadata": {"name": node_pool_name(gpu)},
        "spec": {
            "template": {
                "metadata": {"labels": {GPU_TYPE_LABEL: gpu.gpu_type.value}},
                "spec": {
                    "nodeClassRef": _node_class_ref(node_class),
                    "requirements": [
                        {
                            "key": "node.kubernetes.io/instance-type",
                            "operator": "In",
                            "values": [option.instance_type for option in gpu.instances],
                        },
                        {
                            "key": GPU_NAME_LABEL,
                            "operator": "In",
                            "values": [gpu.karpenter_gpu_name],
                        },
                        *ON_DEMAND_AMD64,
                    ],
                    "taints": [{"key": GPU_TAINT_KEY, "value": "true", "effect": "NoSchedule"}],
                    # A fine-tuning job may run for days (the workflow allows 7): no expiry.
                    "expireAfter": "Never",
                },
            },
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": GPU_NODE_EMPTY_AFTER,
            },
            "limits": {GPU_RESOURCE: str(GPU_NODE_POOL_LIMIT)},
        },
    }


def cpu_node_pool_manifest(node_class: str) -> Manifest:
    """Compute-optimized on-demand nodes for the streaming data stages (no GPU), tainted so
    only those pods land there."""
    return {
        "apiVersion": NODE_POOL_API,
        "kind": "NodePool",
        "metadata": {"name": f"whetstone-{CPU_POOL}"},
        "spec": {
            "template": {
                "metadata": {"labels": {CPU_POOL_LABEL: CPU_POOL}},
                "spec": {
                    "nodeClassRef": _node_class_ref(node_class),
                    "requirements": [
                        {
                            "key": "karpenter.k8s.aws/instance-category",
                            "operator": "In",
                            "values": ["c", "m"],
                        },
                        *ON_DEMAND_AMD64,
                    ],
                    "taints": [{"key": CPU_POOL_LABEL, "value": CPU_POOL, "effect": "NoSchedule"}],
                },
            },
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": GPU_NODE_EMPTY_AFTER,
            },
            "limits": {"cpu": "256"},
        },
    }


def gpu_node_pool_manifests(node_class: str) -> list[Manifest]:
    return [gpu_node_pool_manifest(gpu, node_class) for gpu in GPUS.values()]


class GpuNodePools(Construct):
    """The six GPU pools and the CPU pool, applied after `after` (Karpenter's chart and its
    CRDs, the node class)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        node_class: str,
        after: list[IConstruct],
    ) -> None:
        super().__init__(scope, construct_id)
        self.manifest = eks.KubernetesManifest(
            self,
            "Manifest",
            cluster=cluster,
            manifest=[*gpu_node_pool_manifests(node_class), cpu_node_pool_manifest(node_class)],
            overwrite=True,
        )
        for dependency in after:
            self.manifest.node.add_dependency(dependency)
