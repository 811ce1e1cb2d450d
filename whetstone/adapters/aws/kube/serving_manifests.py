"""A job's vLLM server: a Deployment and a ClusterIP Service in its organization's namespace.

Every object of one deploy is named `vllm-<job>-<generation>`, a fresh generation per
deploy, so stopping one deploy never removes another's. The pod runs under that name's own
ServiceAccount, which EKS Pod Identity gives the read-only serving role (never the
trainer's): an init container (the AWS CLI image) copies the job's model from S3 into an
emptyDir, then vLLM serves it. vLLM requires the deploy's key (`VLLM_API_KEY`, from the
deploy's Secret) on /v1 routes; a mounted middleware lets the platform send it as
`X-Whetstone-Model-Key` through the API server's proxy, which drops `Authorization`. An adapter
is served over its base model (downloaded from the Hugging Face hub into another emptyDir)
under the adapter's name, the job id; a full model is served from its folder under the same
name. The GPUs come from the model's serving requirements
(whetstone/core/serving_hardware.py), with the node labels and taint the training Jobs use.
Pure functions returning dicts.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from pathlib import Path

from whetstone.adapters.aws.kube.client import Manifest
from whetstone.adapters.aws.kube.gpu_pods import gpu_pod_template, shm_volume
from whetstone.adapters.aws.kube.network_policies import serving_ingress_manifest
from whetstone.adapters.aws.kube.shared_manifests import (
    GPU_RESOURCE,
    LABEL_APP,
    LABEL_JOB,
    JobSettings,
    job_labels,
    job_namespace,
    namespace_manifests,
)
from whetstone.core.catalog.hardware import get_gpu
from whetstone.core.job import JobRecord
from whetstone.core.serving import vllm_lora_rank
from whetstone.core.serving_hardware import (
    GPU_MEMORY_UTILIZATION,
    ServingHardware,
    served_base_model,
)
from whetstone.core.spec import ADAPTER_METHODS

# vLLM's OpenAI-compatible server, pinned: v0.11.0 (October 2025) serves LoRA with the
# flags used below (--enable-lora, --lora-modules name=path, --max-lora-rank, --max-loras),
# answers GET /health, and runs as any non-root user given a writable HOME.
VLLM_IMAGE = "docker.io/vllm/vllm-openai:v0.11.0"
# The AWS CLI copies the model from S3; 2.15.0 is the first v2 that takes EKS Pod Identity
# credentials, this pin is well past it.
MODEL_FETCH_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.27.0"
SERVING_APP = "whetstone-vllm"
SERVER_CONTAINER = "vllm"
FETCH_CONTAINER = "fetch-model"
PORT = 8000
PORT_NAME = "http"
MODELS_DIR = "/models"
CACHE_DIR = "/cache"
# Optional Secret (key `token`) in the org namespace for gated base models on the hub.
HF_TOKEN_SECRET = "huggingface-token"
CPU_REQUEST_PER_GPU = 3
MEMORY_REQUEST_GIB_PER_GPU = 12  # fits the 16 GiB of a one-GPU xlarge node
SHM_SIZE = "8Gi"  # NCCL between tensor-parallel workers
LABEL_GENERATION = "whetstone.dev/deployment"
# The platform's key header through the API server's proxy (vllm_key_header.py).
KEY_HEADER = "X-Whetstone-Model-Key"
KEY_ENV = "VLLM_API_KEY"  # vLLM reads its key from here: never in args, never in plain env
SECRET_KEY_NAME = "key"
MIDDLEWARE_DIR = "/opt/whetstone"
MIDDLEWARE_SOURCE = Path(__file__).with_name("vllm_key_header.py")
MIDDLEWARE_CLASS = f"{MIDDLEWARE_SOURCE.stem}.KeyHeader"


@dataclass(frozen=True)
class ServingSettings:
    """Cluster-wide choices the serving manifests follow (from Settings)."""

    cluster: JobSettings = field(default_factory=JobSettings)
    ready_timeout_s: int = 3600  # node, image pull, weights download and load
    unschedulable_grace_s: int = 900  # Karpenter's time to bring a GPU node
    vllm_image: str = VLLM_IMAGE
    fetch_image: str = MODEL_FETCH_IMAGE


def server_name(job_id: str, generation: str | None) -> str:
    """The name of every object of one deploy (a DNS-1035 label); without a generation, the
    name deployments had before generations."""
    return f"vllm-{job_id}-{generation}" if generation else f"vllm-{job_id}"


def recorded_generation(job: JobRecord) -> str | None:
    """The generation of the job's recorded deployment."""
    return job.deployment.generation if job.deployment is not None else None


def deployment_name(job: JobRecord) -> str:
    """The name of the recorded deployment's objects (Deployment, Service ...)."""
    return server_name(job.job_id, recorded_generation(job))


def key_secret_name(name: str) -> str:
    """The Secret holding the key of the server named `name`."""
    return f"{name}-api-key"


def middleware_config_name(name: str) -> str:
    """The ConfigMap holding the key-header middleware of the server named `name`."""
    return f"{name}-middleware"


def server_selector(job: JobRecord, generation: str | None) -> dict[str, str]:
    """The labels that pick the server pods of one deploy of the job."""
    found = {LABEL_APP: SERVING_APP, LABEL_JOB: job.job_id}
    return {**found, LABEL_GENERATION: generation} if generation else found


def endpoint_url(job: JobRecord, generation: str | None, settings: ServingSettings) -> str:
    """The OpenAI base URL inside the cluster."""
    namespace = job_namespace(job, settings.cluster)
    name = server_name(job.job_id, generation)
    return f"http://{name}.{namespace}.svc.cluster.local:{PORT}/v1"


def _metadata(job: JobRecord, name: str, generation: str, settings: ServingSettings) -> Manifest:
    labels = {**job_labels(job, SERVING_APP), LABEL_GENERATION: generation}
    return {"name": name, "namespace": job_namespace(job, settings.cluster), "labels": labels}


def _served_folder(job: JobRecord) -> str:
    return f"{MODELS_DIR}/{'adapter' if job.spec.tuning_method in ADAPTER_METHODS else 'model'}"


def served_base_name(job: JobRecord) -> str | None:
    """The name vLLM answers for the base beside the job's adapter (the adapter off): the
    base's repo, which `vllm_args` serves under its own name; None for a full model."""
    if job.spec.tuning_method not in ADAPTER_METHODS:
        return None
    return served_base_model(job.spec).hf_repo


def vllm_args(job: JobRecord, hardware: ServingHardware, max_lora_rank: int) -> list[str]:
    """`vllm serve` arguments: the base with the adapter under the job's name, or the full
    model's folder under it."""
    dtype = "bfloat16" if get_gpu(hardware.gpu_type).bf16 else "float16"
    common = [
        "--middleware",
        MIDDLEWARE_CLASS,
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
        "--dtype",
        dtype,
        "--max-model-len",
        str(hardware.max_model_len),
        "--gpu-memory-utilization",
        str(GPU_MEMORY_UTILIZATION),
        "--tensor-parallel-size",
        str(hardware.gpu_count),
        "--generation-config",
        "auto",
    ]
    folder = _served_folder(job)
    base = served_base_name(job)
    if base is None:
        return [folder, "--served-model-name", job.job_id, *common]
    return [
        base,
        *common,
        # The tokenizer (and its chat template) saved with the adapter, as used in training.
        "--tokenizer",
        folder,
        "--enable-lora",
        "--lora-modules",
        f"{job.job_id}={folder}",
        "--max-lora-rank",
        str(vllm_lora_rank(max_lora_rank)),
        "--max-loras",
        "1",
    ]


def _health_probe(period_s: int, failures: int) -> Manifest:
    return {
        "httpGet": {"path": "/health", "port": PORT_NAME},
        "periodSeconds": period_s,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def deployment_manifest(
    job: JobRecord,
    model_uri: str,
    hardware: ServingHardware,
    max_lora_rank: int,
    settings: ServingSettings,
    *,
    generation: str,
) -> Manifest:
    """The vLLM Deployment of one deploy, serving the job's model from `model_uri`
    (s3://.../model/) under the deploy's ServiceAccount, with the deploy's key."""
    name = server_name(job.job_id, generation)
    gpus = str(hardware.gpu_count)
    # The base's weights download into the cache; a full model's copy lies in /models.
    weights_gib = math.ceil(hardware.weights_gib * 1.1) + 10
    home = [{"name": "HOME", "value": CACHE_DIR}]
    copy = ["aws", "s3", "cp", "--recursive", "--only-show-errors", model_uri, _served_folder(job)]
    fetch = {
        "name": FETCH_CONTAINER,
        "image": settings.fetch_image,
        "command": copy,
        "env": [*home, {"name": "AWS_REGION", "value": settings.cluster.region}],
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": "models", "mountPath": MODELS_DIR},
            {"name": "cache", "mountPath": CACHE_DIR},
        ],
    }
    server = {
        "name": SERVER_CONTAINER,
        "image": settings.vllm_image,
        "command": ["vllm", "serve"],
        "args": vllm_args(job, hardware, max_lora_rank),
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "env": [
            *home,
            {"name": "HF_HOME", "value": f"{CACHE_DIR}/huggingface"},
            {"name": "XDG_CACHE_HOME", "value": CACHE_DIR},
            {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
            {"name": "DO_NOT_TRACK", "value": "1"},
            {"name": "PYTHONPATH", "value": MIDDLEWARE_DIR},
            {
                "name": KEY_ENV,
                "valueFrom": {
                    "secretKeyRef": {"name": key_secret_name(name), "key": SECRET_KEY_NAME}
                },
            },
            {
                "name": "HF_TOKEN",
                "valueFrom": {
                    "secretKeyRef": {"name": HF_TOKEN_SECRET, "key": "token", "optional": True}
                },
            },
        ],
        "resources": {
            "requests": {
                GPU_RESOURCE: gpus,
                "cpu": str(CPU_REQUEST_PER_GPU * hardware.gpu_count),
                "memory": f"{MEMORY_REQUEST_GIB_PER_GPU * hardware.gpu_count}Gi",
                "ephemeral-storage": f"{weights_gib}Gi",
            },
            "limits": {GPU_RESOURCE: gpus},
        },
        # Loading waits as long as the deployment may take; after that, /health must answer.
        "startupProbe": _health_probe(10, max(1, settings.ready_timeout_s // 10)),
        "readinessProbe": _health_probe(5, 3),
        "livenessProbe": _health_probe(15, 4),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": "models", "mountPath": MODELS_DIR, "readOnly": True},
            {"name": "cache", "mountPath": CACHE_DIR},
            {"name": "shm", "mountPath": "/dev/shm"},
            {"name": "middleware", "mountPath": MIDDLEWARE_DIR, "readOnly": True},
        ],
    }
    pod_spec = {
        "serviceAccountName": name,
        "initContainers": [fetch],
        "containers": [server],
        "volumes": [
            {"name": "models", "emptyDir": {"sizeLimit": f"{weights_gib}Gi"}},
            {"name": "cache", "emptyDir": {"sizeLimit": f"{weights_gib}Gi"}},
            shm_volume(SHM_SIZE),
            {"name": "middleware", "configMap": {"name": middleware_config_name(name)}},
        ],
    }
    template = gpu_pod_template(job, SERVING_APP, hardware.gpu_type, hardware.gpu_count, pod_spec)
    template["metadata"]["labels"][LABEL_GENERATION] = generation
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(job, name, generation, settings),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 1,
            # One server holds the GPUs; a second during a rollout would need a second node.
            "strategy": {"type": "Recreate"},
            "progressDeadlineSeconds": settings.ready_timeout_s,
            "selector": {"matchLabels": server_selector(job, generation)},
            # A consolidation would restart the only replica: gpu_pod_template keeps the node.
            "template": template,
        },
    }


def service_manifest(job: JobRecord, settings: ServingSettings, *, generation: str) -> Manifest:
    """The ClusterIP Service in front of one deploy's server."""
    name = server_name(job.job_id, generation)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(job, name, generation, settings),
        "spec": {
            "type": "ClusterIP",
            "selector": server_selector(job, generation),
            "ports": [
                {"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}
            ],
        },
    }


def service_account_manifest(
    job: JobRecord, settings: ServingSettings, *, generation: str
) -> Manifest:
    """The ServiceAccount of one deploy's pods, associated with the serving role."""
    name = server_name(job.job_id, generation)
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(job, name, generation, settings),
        "automountServiceAccountToken": False,
    }


def key_secret_manifest(
    job: JobRecord, settings: ServingSettings, *, generation: str, key: str
) -> Manifest:
    """The Secret holding the deploy's key, which vLLM requires and the platform sends."""
    name = server_name(job.job_id, generation)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(job, key_secret_name(name), generation, settings),
        "type": "Opaque",
        "data": {SECRET_KEY_NAME: base64.b64encode(key.encode()).decode("ascii")},
    }


def middleware_manifest(job: JobRecord, settings: ServingSettings, *, generation: str) -> Manifest:
    """The ConfigMap that mounts the key-header middleware into the vLLM container."""
    name = server_name(job.job_id, generation)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(job, middleware_config_name(name), generation, settings),
        "data": {MIDDLEWARE_SOURCE.name: MIDDLEWARE_SOURCE.read_text(encoding="utf-8")},
    }


def generation_objects(job_id: str, generation: str | None) -> list[tuple[str, str]]:
    """(kind, name) of what one deploy created, the Deployment first (its GPU goes first);
    a deployment from before generations had only a Service and a Deployment of its own."""
    name = server_name(job_id, generation)
    if generation is None:
        return [("Deployment", name), ("Service", name)]
    return [
        ("Deployment", name),
        ("Service", name),
        ("Secret", key_secret_name(name)),
        ("ConfigMap", middleware_config_name(name)),
    ]


def serving_manifests(
    job: JobRecord,
    model_uri: str,
    hardware: ServingHardware,
    max_lora_rank: int,
    settings: ServingSettings,
    *,
    generation: str,
    key: str,
) -> list[Manifest]:
    """Everything one deploy applies, in order (the namespace, quota and policies exist
    since training; applying them again is a no-op). The Deployment, which takes a GPU
    node, comes last: a deploy that fails before it leaves nothing costly behind."""
    namespace = job_namespace(job, settings.cluster)
    return [
        *namespace_manifests(job, settings.cluster),
        serving_ingress_manifest(namespace, {LABEL_APP: SERVING_APP}, PORT),
        service_account_manifest(job, settings, generation=generation),
        key_secret_manifest(job, settings, generation=generation, key=key),
        middleware_manifest(job, settings, generation=generation),
        service_manifest(job, settings, generation=generation),
        deployment_manifest(
            job, model_uri, hardware, max_lora_rank, settings, generation=generation
        ),
    ]
