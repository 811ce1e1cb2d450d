"""A GPU workload's pod template (a training Job's or a vLLM Deployment's): on a node with
the job's GPUs, kept there, under the restricted Pod Security Standard its namespace
enforces. Pure functions returning dicts."""

from __future__ import annotations

from typing import Any

from whetstone.adapters.aws.kube.client import Manifest
from whetstone.adapters.aws.kube.shared_manifests import job_labels
from whetstone.core.catalog.hardware import GPU_TAINT_KEY, GpuType, get_gpu
from whetstone.core.job import JobRecord

TRAINER_UID = 1000  # the `trainer` user of trainer_container/Dockerfile
_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _restricted(container: dict[str, Any]) -> dict[str, Any]:
    """The container under the restricted standard; its own securityContext adds to it."""
    return {
        **container,
        "securityContext": {**_RESTRICTED_CONTAINER, **container.get("securityContext", {})},
    }


def gpu_pod_template(
    job: JobRecord, app: str, gpu_type: GpuType, gpu_count: int, spec: dict[str, Any]
) -> Manifest:
    """The pod template of the job's workload by `app`: its labels; the job's ServiceAccount;
    a node with the GPUs, chosen by the GPU node pools' labels and taint, on-demand, that
    consolidation leaves alone while the pod runs; the pod and its containers restricted.
    `spec` gives the rest of the pod spec (containers, volumes ...)."""
    selector = get_gpu(gpu_type).node_selector(gpu_count)
    return restricted_pod_template(job, app, selector, GPU_TAINT_KEY, spec)


def restricted_pod_template(
    job: JobRecord, app: str, selector: dict[str, str], taint: str, spec: dict[str, Any]
) -> Manifest:
    """A pod template of the job's workload on an on-demand amd64 node picked by `selector`,
    tolerating `taint`, restricted as its namespace requires (see gpu_pod_template)."""
    containers = {
        key: [_restricted(container) for container in spec[key]]
        for key in ("initContainers", "containers")
        if key in spec
    }
    return {
        "metadata": {
            "labels": job_labels(job, app),
            "annotations": {"karpenter.sh/do-not-disrupt": "true"},
        },
        "spec": {
            "serviceAccountName": job.job_id,
            "nodeSelector": {
                **selector,
                "kubernetes.io/arch": "amd64",
                "karpenter.sh/capacity-type": "on-demand",
            },
            "tolerations": [{"key": taint, "operator": "Exists", "effect": "NoSchedule"}],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": TRAINER_UID,
                "runAsGroup": TRAINER_UID,
                "fsGroup": TRAINER_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            **spec,
            **containers,
        },
    }


def shm_volume(size: str) -> dict[str, Any]:
    """A memory-backed /dev/shm (data loaders, NCCL between GPUs)."""
    return {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": size}}
