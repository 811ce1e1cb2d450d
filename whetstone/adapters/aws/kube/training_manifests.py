"""The trainer's Kubernetes Job: one per fine-tuning job, on a GPU node Karpenter provides.

The pod asks for the job's GPU type by Karpenter's node labels, tolerates the GPU taint,
keeps its node to itself, and runs as a non-root user on a read-only root filesystem with
scratch space from ephemeral storage (gpu_pods.py holds what the server's pod shares).
Pure functions returning dicts.
"""

from __future__ import annotations

import math

from whetstone.adapters.aws.kube.client import Manifest
from whetstone.adapters.aws.kube.gpu_pods import gpu_pod_template, shm_volume
from whetstone.adapters.aws.kube.shared_manifests import (
    GPU_RESOURCE,
    LABEL_APP,
    TRAINER_APP,
    JobSettings,
    job_labels,
    job_namespace,
    org_manifests,
)
from whetstone.core.job import JobRecord
from whetstone.core.trainer_exit import TrainerExit

CONTAINER_NAME = "trainer"
BACKOFF_LIMIT = 3
SHM_SIZE = "16Gi"
CPU_REQUEST = "2"
MEMORY_REQUEST = "8Gi"
# The Job controller labels each pod with its Job's name.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def trainer_pod_selector(job: JobRecord) -> dict[str, str]:
    """The labels that pick the pods of the job's trainer."""
    return {JOB_NAME_LABEL: job.job_id}


def active_deadline_s(job: JobRecord, settings: JobSettings) -> int:
    """The estimate with a margin: past it Kubernetes kills the trainer (a runaway job
    never bills forever)."""
    estimated = job.estimate.estimated_hours * 3600
    return int(math.ceil(estimated * settings.deadline_factor)) + settings.deadline_floor_s


def job_manifest(job: JobRecord, plan_uri: str, image: str, settings: JobSettings) -> Manifest:
    """The Kubernetes Job that runs `python -m trainer --spec <plan_uri>` for `job`."""
    hardware = job.spec.hardware
    storage = f"{hardware.storage_gb}Gi"
    gpus = str(hardware.gpu_count)
    container = {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["--spec", plan_uri],
        "env": [
            {"name": "AWS_REGION", "value": settings.region},
            {"name": "AWS_DEFAULT_REGION", "value": settings.region},
            {"name": "WHETSTONE_JOB_ID", "value": job.job_id},
            {"name": "WHETSTONE_EVENT_BUS", "value": settings.event_bus_name},
            {"name": "WHETSTONE_WORKDIR", "value": "/scratch"},
            {"name": "HF_HOME", "value": "/scratch/huggingface"},
            {"name": "TMPDIR", "value": "/tmp"},
        ],
        "resources": {
            "requests": {
                GPU_RESOURCE: gpus,
                "cpu": CPU_REQUEST,
                "memory": MEMORY_REQUEST,
                "ephemeral-storage": storage,
            },
            "limits": {GPU_RESOURCE: gpus, "ephemeral-storage": storage},
        },
        "securityContext": {"readOnlyRootFilesystem": True},
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "shm", "mountPath": "/dev/shm"},
        ],
    }
    pod_spec = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": settings.grace_s,
        # The node is the job's alone: no other trainer shares its GPUs, PCIe or disk.
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": {LABEL_APP: TRAINER_APP}},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        },
        "containers": [container],
        "volumes": [
            {"name": "scratch", "emptyDir": {"sizeLimit": storage}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "10Gi"}},
            shm_volume(SHM_SIZE),
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job.job_id,
            "namespace": job_namespace(job, settings),
            "labels": job_labels(job, TRAINER_APP),
        },
        "spec": {
            "backoffLimit": BACKOFF_LIMIT,
            "activeDeadlineSeconds": active_deadline_s(job, settings),
            "ttlSecondsAfterFinished": settings.ttl_s,
            # A node taken away (spot reclaim, consolidation, upgrade) is not the trainer's
            # fault: the retry resumes from the last checkpoint and does not count. A
            # trainer that exits with its failure code failed for good.
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "Ignore",
                        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                    },
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": CONTAINER_NAME,
                            "operator": "In",
                            "values": [TrainerExit.FAILED.value],
                        },
                    },
                ]
            },
            "template": gpu_pod_template(
                job, TRAINER_APP, hardware.gpu_type, hardware.gpu_count, pod_spec
            ),
        },
    }


def manifests_for(
    job: JobRecord, plan_uri: str, image: str, settings: JobSettings
) -> list[Manifest]:
    """Everything a launch applies, in order."""
    return [*org_manifests(job, settings), job_manifest(job, plan_uri, image, settings)]
