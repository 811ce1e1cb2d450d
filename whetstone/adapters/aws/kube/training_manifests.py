"""The trainer's Kubernetes Jobs: one per stage of a fine-tuning job (prepare, train,
finalize), all running the same image and plan.

The train stage asks for the job's GPU type by Karpenter's node labels, tolerates the GPU
taint and keeps its node to itself; prepare and finalize (streaming data work, no GPU) run on
the CPU node pool. Every pod runs as a non-root user on a read-only root filesystem with
scratch space from ephemeral storage (gpu_pods.py holds what the server's pod shares).
Pure functions returning dicts.
"""

from __future__ import annotations

import math
from typing import Any

from whetstone.adapters.aws.kube.client import Manifest
from whetstone.adapters.aws.kube.gpu_pods import (
    gpu_pod_template,
    restricted_pod_template,
    shm_volume,
)
from whetstone.adapters.aws.kube.shared_manifests import (
    GPU_RESOURCE,
    LABEL_APP,
    TRAINER_APP,
    JobSettings,
    job_labels,
    job_namespace,
    org_manifests,
)
from whetstone.core.catalog.hardware import CPU_POOL, CPU_POOL_LABEL
from whetstone.core.events import TrainerStage
from whetstone.core.job import JobRecord
from whetstone.core.trainer_exit import TrainerExit

CONTAINER_NAME = "trainer"
BACKOFF_LIMIT = 3
SHM_SIZE = "16Gi"
CPU_REQUEST = "2"
MEMORY_REQUEST = "8Gi"
# prepare and finalize stream their data: a small pod, whatever the dataset or model size.
STAGE_MEMORY_REQUEST = "2Gi"
# prepare and finalize end within the workflow's limit for them (TimeoutSeconds of
# RunPrepare and RunFinalize in state_machine/workflow.asl.json).
STAGE_DEADLINE_S = 86400
# The Job controller labels each pod with its Job's name.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def stage_job_name(job: JobRecord, stage: TrainerStage) -> str:
    """The stage's Job: the train stage keeps the job's id, the others add their stage."""
    return job.job_id if stage is TrainerStage.TRAIN else f"{job.job_id}-{stage}"


def trainer_pod_selector(
    job: JobRecord, stage: TrainerStage = TrainerStage.TRAIN
) -> dict[str, str]:
    """The labels that pick the pods of the job's trainer stage."""
    return {JOB_NAME_LABEL: stage_job_name(job, stage)}


def active_deadline_s(job: JobRecord, settings: JobSettings) -> int:
    """The train stage's limit: the spec's `max_run_hours` (the trainer stops itself there
    with a final checkpoint) plus a margin, else the estimate (recomputed from the prepared
    dataset) with a margin. Past it Kubernetes kills the trainer: a runaway job never bills
    forever."""
    cap_hours = job.spec.hardware.max_run_hours
    if cap_hours is not None:
        return int(math.ceil(cap_hours * 3600)) + settings.deadline_floor_s
    if job.estimate is None:  # recorded by the prepare stage, which runs before training
        raise ValueError(f"job {job.job_id} has no estimate to set its training deadline from")
    estimated = job.estimate.estimated_hours * 3600
    return int(math.ceil(estimated * settings.deadline_factor)) + settings.deadline_floor_s


def _container(
    job: JobRecord, image: str, args: list[str], resources: dict[str, Any], settings: JobSettings
) -> dict[str, Any]:
    return {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "env": [
            {"name": "AWS_REGION", "value": settings.region},
            {"name": "AWS_DEFAULT_REGION", "value": settings.region},
            {"name": "WHETSTONE_JOB_ID", "value": job.job_id},
            {"name": "WHETSTONE_EVENT_BUS", "value": settings.event_bus_name},
            {"name": "WHETSTONE_WORKDIR", "value": "/scratch"},
            {"name": "HF_HOME", "value": "/scratch/huggingface"},
            {"name": "TMPDIR", "value": "/tmp"},
        ],
        "resources": resources,
        "securityContext": {"readOnlyRootFilesystem": True},
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def _volumes(storage: str) -> list[dict[str, Any]]:
    return [
        {"name": "scratch", "emptyDir": {"sizeLimit": storage}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "10Gi"}},
    ]


def _job(
    job: JobRecord,
    stage: TrainerStage,
    deadline_s: int,
    template: Manifest,
    settings: JobSettings,
) -> Manifest:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": stage_job_name(job, stage),
            "namespace": job_namespace(job, settings),
            "labels": job_labels(job, TRAINER_APP),
        },
        "spec": {
            "backoffLimit": BACKOFF_LIMIT,
            "activeDeadlineSeconds": deadline_s,
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
            "template": template,
        },
    }


def job_manifest(job: JobRecord, plan_uri: str, image: str, settings: JobSettings) -> Manifest:
    """The Kubernetes Job that runs `python -m trainer --spec <plan_uri>` (the train stage)."""
    hardware = job.spec.hardware
    storage = f"{hardware.storage_gb}Gi"
    gpus = str(hardware.gpu_count)
    resources = {
        "requests": {
            GPU_RESOURCE: gpus,
            "cpu": CPU_REQUEST,
            "memory": MEMORY_REQUEST,
            "ephemeral-storage": storage,
        },
        "limits": {GPU_RESOURCE: gpus, "ephemeral-storage": storage},
    }
    container = _container(job, image, ["--spec", plan_uri], resources, settings)
    container["volumeMounts"].append({"name": "shm", "mountPath": "/dev/shm"})
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
        "volumes": [*_volumes(storage), shm_volume(SHM_SIZE)],
    }
    template = gpu_pod_template(job, TRAINER_APP, hardware.gpu_type, hardware.gpu_count, pod_spec)
    return _job(job, TrainerStage.TRAIN, active_deadline_s(job, settings), template, settings)


def cpu_stage_manifest(
    job: JobRecord, plan_uri: str, image: str, settings: JobSettings, stage: TrainerStage
) -> Manifest:
    """The Kubernetes Job that runs `python -m trainer <stage> --spec <plan_uri>` for the
    prepare or finalize stage, on the CPU node pool, asking for no GPU."""
    storage = f"{job.spec.hardware.storage_gb}Gi"
    resources = {
        "requests": {
            "cpu": CPU_REQUEST,
            "memory": STAGE_MEMORY_REQUEST,
            "ephemeral-storage": storage,
        },
        "limits": {"memory": STAGE_MEMORY_REQUEST, "ephemeral-storage": storage},
    }
    pod_spec = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": settings.grace_s,
        "containers": [
            _container(job, image, [stage.value, "--spec", plan_uri], resources, settings)
        ],
        "volumes": _volumes(storage),
    }
    selector = {CPU_POOL_LABEL: CPU_POOL}
    template = restricted_pod_template(job, TRAINER_APP, selector, CPU_POOL_LABEL, pod_spec)
    return _job(job, stage, STAGE_DEADLINE_S, template, settings)


def manifests_for(
    job: JobRecord,
    plan_uri: str,
    image: str,
    settings: JobSettings,
    stage: TrainerStage = TrainerStage.TRAIN,
) -> list[Manifest]:
    """Everything the launch of a stage applies, in order."""
    if stage is TrainerStage.TRAIN:
        stage_job = job_manifest(job, plan_uri, image, settings)
    else:
        stage_job = cpu_stage_manifest(job, plan_uri, image, settings, stage)
    return [*org_manifests(job, settings), stage_job]
