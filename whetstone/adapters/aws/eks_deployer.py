"""Deployments on EKS: a vLLM Deployment and a ClusterIP Service per job, in its org's namespace.

The pod runs under the job's own ServiceAccount (named after the job, as the trainer's is),
associated through EKS Pod Identity with the trainer role, whose policy confines S3 to the
job's prefix: an init container (the AWS CLI image) copies the job's model from S3 into an
emptyDir, then vLLM serves it. An adapter is served over its base model (downloaded from the
Hugging Face hub into another emptyDir) under the adapter's name, the job id; a full model is
served from its folder under the same name. The GPUs come from the model's serving
requirements (whetstone/core/serving_hardware.py), with the node labels and taint the
training Jobs use.

Readiness is read from the Kubernetes API: the Deployment's available replicas, its
conditions (progress deadline, quota refusals) and its pod's container states (image pulls,
crash loops, a GPU node that never comes). Once the server answers, the golden prompt is sent
through the API server's service proxy and its greedy answer compared with the one the
trainer recorded for the saved model. A deployment found failed has its objects deleted, so a
broken server never keeps a GPU node.

As in eks_compute, the manifests are pure functions and `kubernetes` is imported only inside
the API client's methods: the API Lambda's cold start never pays for it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from whetstone.adapters.aws.eks_compute import (
    GPU_RESOURCE,
    LABEL_APP,
    LABEL_JOB,
    TRAINER_UID,
    JobSettings,
    KubeApi,
    KubernetesApi,
    Manifest,
    PodIdentity,
    _labels,
    _retryable,
    namespace_manifest,
    namespace_name,
    resource_quota_manifest,
    service_account_manifest,
)
from whetstone.core.catalog.base_models import BASE_MODELS, BASE_MODELS_BY_ID
from whetstone.core.catalog.hardware import GPU_TAINT_KEY, get_gpu
from whetstone.core.catalog.model_facts import BaseModelInfo
from whetstone.core.errors import InvalidInputError
from whetstone.core.job import Deployment, JobRecord, utcnow
from whetstone.core.serving import (
    GOLDEN_MAX_TOKENS,
    GOLDEN_MESSAGES,
    ServingProblem,
    check_golden,
    vllm_lora_rank,
)
from whetstone.core.serving_hardware import (
    GPU_MEMORY_UTILIZATION,
    ServingHardware,
    choose_serving_hardware,
)
from whetstone.core.spec import JobSpec, Method, resolve_precision
from whetstone.observability import logger

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
# Container waiting reasons that retrying will not fix.
_FAILED_WAITING = {
    "ImagePullBackOff": "the image could not be pulled",
    "InvalidImageName": "the image name is invalid",
    "CreateContainerConfigError": "the container could not be configured",
    "CreateContainerError": "the container could not be created",
    "CrashLoopBackOff": "it keeps exiting",
}
# Restarts after which a crash loop is the deployment's fault rather than bad luck (a
# transient S3 error in the fetch, one crash of a ready server).
CRASH_LOOP_RESTARTS = 3
_MESSAGE_CHARS = 1500


@dataclass(frozen=True)
class ServingSettings:
    """Cluster-wide choices the serving manifests follow (from Settings)."""

    cluster: JobSettings = field(default_factory=JobSettings)
    ready_timeout_s: int = 3600  # node, image pull, weights download and load
    unschedulable_grace_s: int = 900  # Karpenter's time to bring a GPU node
    vllm_image: str = VLLM_IMAGE
    fetch_image: str = MODEL_FETCH_IMAGE


def deployment_name(job: JobRecord) -> str:
    """The Deployment's and the Service's name (a DNS-1035 label)."""
    return f"vllm-{job.job_id}"


def serving_labels(job: JobRecord) -> dict[str, str]:
    return {**_labels(job, job.org_id), LABEL_APP: SERVING_APP}


def endpoint_url(job: JobRecord, settings: ServingSettings) -> str:
    """The OpenAI base URL inside the cluster."""
    namespace = namespace_name(job.org_id, settings.cluster.namespace_prefix)
    return f"http://{deployment_name(job)}.{namespace}.svc.cluster.local:{PORT}/v1"


def served_base_model(spec: JobSpec) -> BaseModelInfo:
    """The catalog facts of the job's base model (a catalog id or its hf:// repo)."""
    if spec.base_model in BASE_MODELS_BY_ID:
        return BASE_MODELS_BY_ID[spec.base_model]
    repo = spec.base_model.removeprefix("hf://").lower()
    for model in BASE_MODELS:
        if model.hf_repo.lower() == repo:
            return model
    raise InvalidInputError(
        f"the aws runtime serves models derived from catalog models only, and {spec.base_model}"
        " is not one; download the model (GET .../download) and serve it yourself",
        code="base_not_servable",
    )


def serves_adapter(spec: JobSpec) -> bool:
    return spec.method in (Method.LORA, Method.QLORA, Method.PROMPT_TUNING)


def trained_in_bf16(spec: JobSpec) -> bool:
    return resolve_precision(spec, gpu_bf16=get_gpu(spec.hardware.gpu_type).bf16) == "bf16"


def serving_hardware(job: JobRecord, max_lora_rank: int) -> ServingHardware:
    """The GPUs the job's model is served on."""
    return choose_serving_hardware(
        served_base_model(job.spec),
        max_lora_rank=max_lora_rank if serves_adapter(job.spec) else None,
        require_bf16=trained_in_bf16(job.spec),
    )


def vllm_args(job: JobRecord, hardware: ServingHardware, max_lora_rank: int) -> list[str]:
    """`vllm serve` arguments: the base with the adapter under the job's name, or the full
    model's folder under it."""
    dtype = "bfloat16" if get_gpu(hardware.gpu_type).bf16 else "float16"
    common = [
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
    if not serves_adapter(job.spec):
        model = f"{MODELS_DIR}/model"
        return [model, "--served-model-name", job.job_id, *common]
    adapter = f"{MODELS_DIR}/adapter"
    base = served_base_model(job.spec).hf_repo
    return [
        base,
        *common,
        # The tokenizer (and its chat template) saved with the adapter, as used in training.
        "--tokenizer",
        adapter,
        "--enable-lora",
        "--lora-modules",
        f"{job.job_id}={adapter}",
        "--max-lora-rank",
        str(vllm_lora_rank(max_lora_rank)),
        "--max-loras",
        "1",
    ]


def _restricted() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


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
) -> Manifest:
    """The vLLM Deployment serving the job's model from `model_uri` (s3://.../model/)."""
    labels = serving_labels(job)
    gpu = get_gpu(hardware.gpu_type)
    gpus = str(hardware.gpu_count)
    target = f"{MODELS_DIR}/{'adapter' if serves_adapter(job.spec) else 'model'}"
    # The base's weights download into the cache; a full model's copy lies in /models.
    weights_gib = math.ceil(hardware.weights_gib * 1.1) + 10
    home = [{"name": "HOME", "value": CACHE_DIR}]
    fetch = {
        "name": FETCH_CONTAINER,
        "image": settings.fetch_image,
        "command": ["aws", "s3", "cp", "--recursive", "--only-show-errors", model_uri, target],
        "env": [*home, {"name": "AWS_REGION", "value": settings.cluster.region}],
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
        "securityContext": _restricted(),
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
        "securityContext": _restricted(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": "models", "mountPath": MODELS_DIR, "readOnly": True},
            {"name": "cache", "mountPath": CACHE_DIR},
            {"name": "shm", "mountPath": "/dev/shm"},
        ],
    }
    pod_spec = {
        "serviceAccountName": job.job_id,
        "nodeSelector": {
            **gpu.node_selector(hardware.gpu_count),
            "kubernetes.io/arch": "amd64",
            "karpenter.sh/capacity-type": "on-demand",
        },
        "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": TRAINER_UID,
            "runAsGroup": TRAINER_UID,
            "fsGroup": TRAINER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [fetch],
        "containers": [server],
        "volumes": [
            {"name": "models", "emptyDir": {"sizeLimit": f"{weights_gib}Gi"}},
            {"name": "cache", "emptyDir": {"sizeLimit": f"{weights_gib}Gi"}},
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(job),
            "namespace": namespace_name(job.org_id, settings.cluster.namespace_prefix),
            "labels": labels,
        },
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 1,
            # One server holds the GPUs; a second during a rollout would need a second node.
            "strategy": {"type": "Recreate"},
            "progressDeadlineSeconds": settings.ready_timeout_s,
            "selector": {"matchLabels": {LABEL_APP: SERVING_APP, LABEL_JOB: job.job_id}},
            "template": {
                # A consolidation would restart the only replica; the node stays while it serves.
                "metadata": {
                    "labels": labels,
                    "annotations": {"karpenter.sh/do-not-disrupt": "true"},
                },
                "spec": pod_spec,
            },
        },
    }


def service_manifest(job: JobRecord, settings: ServingSettings) -> Manifest:
    """The ClusterIP Service in front of the server."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": deployment_name(job),
            "namespace": namespace_name(job.org_id, settings.cluster.namespace_prefix),
            "labels": serving_labels(job),
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_APP: SERVING_APP, LABEL_JOB: job.job_id},
            "ports": [
                {"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}
            ],
        },
    }


def serving_manifests(
    job: JobRecord,
    model_uri: str,
    hardware: ServingHardware,
    max_lora_rank: int,
    settings: ServingSettings,
) -> list[Manifest]:
    """Everything a deploy applies, in order (the namespace, quota and service account
    exist since training; applying them again is a no-op). The Deployment, which takes a
    GPU node, comes last: a deploy that fails before it leaves nothing costly behind."""
    return [
        namespace_manifest(job.org_id, settings.cluster),
        resource_quota_manifest(job.org_id, settings.cluster),
        service_account_manifest(job, settings.cluster),
        service_manifest(job, settings),
        deployment_manifest(job, model_uri, hardware, max_lora_rank, settings),
    ]


# --- readiness ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerState:
    """Where a server is: starting, available (answering /health) or failed, and why."""

    state: str  # "starting", "available", "failed"
    message: str


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_CHARS else "..." + text[-_MESSAGE_CHARS:]


def _true_condition(obj: Mapping[str, Any], kind: str, status: str) -> Mapping[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == status:
            return dict(condition)
    return None


def _container_failure(pod: Mapping[str, Any]) -> str | None:
    status = pod.get("status") or {}
    statuses = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    for container in statuses:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason not in _FAILED_WAITING:
            continue
        restarts = int(container.get("restartCount") or 0)
        if reason == "CrashLoopBackOff" and restarts < CRASH_LOOP_RESTARTS:
            continue
        name = container.get("name", "")
        what = "fetching the model from S3" if name == FETCH_CONTAINER else f"container {name}"
        detail = str(waiting.get("message") or "")
        last = (container.get("lastState") or {}).get("terminated") or {}
        if last:
            detail = (
                f"exit code {last.get('exitCode')}"
                + (f" ({last['reason']})" if last.get("reason") else "")
                + (f": {last['message']}" if last.get("message") else "")
            )
        return _clip(f"{what}: {reason}, {_FAILED_WAITING[reason]}; {detail}".rstrip("; "))
    return None


def _age_s(timestamp: str | None, now: datetime) -> float:
    if not timestamp:
        return 0.0
    try:
        at = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (now - at).total_seconds()


def _waiting_message(pods: Sequence[Mapping[str, Any]]) -> str:
    if not pods:
        return "creating the server's pod"
    status = pods[0].get("status") or {}
    if _true_condition(pods[0], "PodScheduled", "False") is not None:
        return "waiting for a GPU node"
    for container in status.get("initContainerStatuses") or []:
        if not (container.get("state") or {}).get("terminated"):
            return "fetching the model from S3"
    return "loading the model (the base's weights download first)"


def server_state(
    deployment: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    now: datetime,
    settings: ServingSettings,
) -> ServerState:
    """Where the server is, from its Deployment and pods (pure)."""
    if deployment is None:
        return ServerState("failed", "the server's Kubernetes Deployment is gone; deploy again")
    stalled = _true_condition(deployment, "Progressing", "False")
    if stalled is not None and stalled.get("reason") == "ProgressDeadlineExceeded":
        cause = next((m for m in map(_container_failure, pods) if m), _waiting_message(pods))
        return ServerState(
            "failed",
            _clip(f"the server was not ready within {settings.ready_timeout_s} s ({cause})"),
        )
    refused = _true_condition(deployment, "ReplicaFailure", "True")
    if refused is not None:
        return ServerState(
            "failed",
            _clip(f"the server's pod could not be created: {refused.get('message') or ''}"),
        )
    for pod in pods:
        failure = _container_failure(pod)
        if failure is not None:
            return ServerState("failed", failure)
        unscheduled = _true_condition(pod, "PodScheduled", "False")
        if unscheduled is not None and unscheduled.get("reason") == "Unschedulable":
            waited = _age_s(unscheduled.get("lastTransitionTime"), now)
            if waited > settings.unschedulable_grace_s:
                return ServerState(
                    "failed",
                    _clip(
                        f"no GPU node could take the server within {int(waited)} s "
                        f"({unscheduled.get('message') or 'Unschedulable'}); check the GPU "
                        "quota and the Karpenter NodePool's limits"
                    ),
                )
    if int((deployment.get("status") or {}).get("availableReplicas") or 0) >= 1:
        return ServerState("available", "the server answers")
    return ServerState("starting", _waiting_message(pods))


# --- the Kubernetes calls -----------------------------------------------------------------


class ServingKubeApi(KubeApi, Protocol):
    """The Kubernetes calls a deployment needs beside the compute's."""

    def read_deployment(self, namespace: str, name: str) -> Manifest | None: ...

    def list_serving_pods(self, namespace: str, job_id: str) -> list[Manifest]: ...

    def delete_deployment(self, namespace: str, name: str) -> None:
        """Delete the Deployment and its pods; a missing one is fine."""

    def delete_service(self, namespace: str, name: str) -> None:
        """A missing Service is fine."""

    def post_to_service(
        self, namespace: str, service: str, port: str, path: str, body: Manifest
    ) -> Manifest:
        """POST JSON to the Service through the API server's proxy; the JSON answer."""


class KubernetesServingApi(KubernetesApi):
    """ServingKubeApi over the official client (the compute's, with Deployments and
    Services)."""

    @_retryable
    def apply(self, manifest: Manifest) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        namespace = manifest["metadata"].get("namespace")
        api = self._client()
        try:
            if manifest["kind"] == "Deployment":
                apps: Any = client.AppsV1Api(api)
                apps.create_namespaced_deployment(namespace, manifest)
            elif manifest["kind"] == "Service":
                core: Any = client.CoreV1Api(api)
                core.create_namespaced_service(namespace, manifest)
            else:
                super().apply(manifest)
        except ApiException as error:
            if not self._missing_ok(error, 409):
                raise

    @_retryable
    def read_deployment(self, namespace: str, name: str) -> Manifest | None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api = self._client()
        try:
            found = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
        except ApiException as error:
            if self._missing_ok(error, 404):
                return None
            raise
        return dict(api.sanitize_for_serialization(found))

    @_retryable
    def list_serving_pods(self, namespace: str, job_id: str) -> list[Manifest]:
        from kubernetes import client

        api = self._client()
        pods = client.CoreV1Api(api).list_namespaced_pod(
            namespace, label_selector=f"{LABEL_APP}={SERVING_APP},{LABEL_JOB}={job_id}"
        )
        return list(api.sanitize_for_serialization(pods).get("items", []))

    @_retryable
    def delete_deployment(self, namespace: str, name: str) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            client.AppsV1Api(self._client()).delete_namespaced_deployment(
                name, namespace, propagation_policy="Foreground"
            )
        except ApiException as error:
            if not self._missing_ok(error, 404):
                raise

    @_retryable
    def delete_service(self, namespace: str, name: str) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            client.CoreV1Api(self._client()).delete_namespaced_service(name, namespace)
        except ApiException as error:
            if not self._missing_ok(error, 404):
                raise

    @_retryable
    def post_to_service(
        self, namespace: str, service: str, port: str, path: str, body: Manifest
    ) -> Manifest:
        from kubernetes.client.exceptions import ApiException

        api = self._client()
        method, url, headers, payload, post_params = api.param_serialize(
            "POST",
            f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}",
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api.call_api(method, url, headers, payload, post_params, _request_timeout=120)
        data = response.read()
        text = data.decode(errors="replace")
        if response.status >= 500 or response.status == 429:  # not there yet, or throttled
            raise ApiException(status=response.status, reason=text)
        if response.status >= 400:  # the server refused the request: the deployment is wrong
            raise ValueError(f"the model server answered {response.status}: {_clip(text)}")
        answer: Manifest = json.loads(data)
        return answer


# --- the Deployer -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterAccess:
    api: ServingKubeApi
    pod_identity: PodIdentity | None = None


class EksDeployer:
    """The Deployer of the aws runtime.

    `connect` builds the cluster clients on first use (not when the API Lambda starts);
    `expected_golden` gives the saved model's golden answer, None when none was recorded.
    """

    def __init__(
        self,
        connect: Callable[[], ClusterAccess],
        settings: ServingSettings,
        *,
        expected_golden: Callable[[JobRecord], str | None],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._connect = connect
        self._access: ClusterAccess | None = None
        self._settings = settings
        self._expected_golden = expected_golden
        self._clock = clock

    @property
    def _cluster(self) -> ClusterAccess:
        if self._access is None:
            self._access = self._connect()
        return self._access

    def _namespace(self, job: JobRecord) -> str:
        return namespace_name(job.org_id, self._settings.cluster.namespace_prefix)

    def start(
        self, job: JobRecord, model_uri: str, *, base_model: str | None, max_lora_rank: int
    ) -> Deployment:
        hardware = serving_hardware(job, max_lora_rank)
        rank = vllm_lora_rank(max_lora_rank)
        cluster = self._cluster
        for manifest in serving_manifests(job, model_uri, hardware, rank, self._settings):
            if manifest["kind"] == "Deployment" and cluster.pod_identity is not None:
                cluster.pod_identity.associate(self._namespace(job), job.job_id)
            cluster.api.apply(manifest)
        now = self._clock()
        logger.info(
            "deployment started",
            job_id=job.job_id,
            gpu_type=hardware.gpu_type.value,
            gpu_count=hardware.gpu_count,
        )
        return Deployment(
            status="starting",
            model=job.job_id,
            endpoint=endpoint_url(job, self._settings),
            max_lora_rank=rank,
            created_at=now,
            updated_at=now,
            message=f"starting vLLM on {hardware.gpu_count} x {get_gpu(hardware.gpu_type).name}"
            f" ({hardware.instance_type}, about ${hardware.hourly_rate_usd}/h)",
        )

    def status(self, job: JobRecord) -> Deployment:
        recorded = job.deployment
        if recorded is None or not recorded.is_live:
            raise LookupError(f"job {job.job_id} has no live deployment")
        namespace = self._namespace(job)
        api = self._cluster.api
        found = api.read_deployment(namespace, deployment_name(job))
        pods = api.list_serving_pods(namespace, job.job_id) if found is not None else []
        state = server_state(found, pods, self._clock(), self._settings)
        if state.state == "failed":
            return self._failed(job, recorded, state.message)
        if state.state == "starting":
            message = state.message
            if recorded.status == "ready":
                message = f"the server restarted; {message}"
            return self._changed(recorded, status="starting", message=message)
        if recorded.status == "ready":
            return self._changed(recorded)
        return self._golden(job, recorded, namespace)

    def _golden(self, job: JobRecord, recorded: Deployment, namespace: str) -> Deployment:
        expected = self._expected_golden(job)
        if expected is None:
            unchecked = ServingProblem(
                code="golden_unchecked",
                message="the trainer recorded no golden answer for this model, so the "
                "endpoint's answers were not compared with the saved model's",
                severity="warning",
            )
            return self._changed(recorded, status="ready", message=None, problems=[unchecked])
        body = {
            "model": job.job_id,
            "messages": list(GOLDEN_MESSAGES),
            "max_tokens": GOLDEN_MAX_TOKENS,
            "temperature": 0,
        }
        try:
            answer = self._cluster.api.post_to_service(
                namespace, deployment_name(job), PORT_NAME, "/v1/chat/completions", body
            )
            served = str(answer["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError, ValueError) as error:
            return self._failed(job, recorded, f"the golden prompt request failed: {error!r}")
        problem = check_golden(expected, served)
        if problem is not None:
            return self._failed(job, recorded, problem.message, problems=[problem])
        logger.info("deployment ready", job_id=job.job_id)
        return self._changed(recorded, status="ready", message=None)

    def _changed(self, recorded: Deployment, **changes: Any) -> Deployment:
        changes.setdefault("problems", [])  # the service keeps the recorded ones
        if any(getattr(recorded, k) != v for k, v in changes.items() if k != "problems"):
            changes["updated_at"] = self._clock()
        return recorded.model_copy(update=changes)

    def _failed(
        self,
        job: JobRecord,
        recorded: Deployment,
        message: str,
        problems: list[ServingProblem] | None = None,
    ) -> Deployment:
        logger.warning("deployment failed", job_id=job.job_id, reason=message)
        self.stop(job)  # a broken server keeps no GPU node
        return self._changed(
            recorded, status="failed", endpoint=None, message=message, problems=problems or []
        )

    def stop(self, job: JobRecord) -> None:
        namespace = self._namespace(job)
        cluster = self._cluster
        cluster.api.delete_service(namespace, deployment_name(job))
        cluster.api.delete_deployment(namespace, deployment_name(job))
        # Training is over (only completed jobs deploy): the job's identity is the server's.
        cluster.api.delete_service_account(namespace, job.job_id)
        if cluster.pod_identity is not None:
            cluster.pod_identity.dissociate(namespace, job.job_id)
        logger.info("deployment stopped", job_id=job.job_id)


def connect_to_cluster(
    cluster_name: str, region: str, trainer_role_arn: str | None
) -> Callable[[], ClusterAccess]:
    """The cluster clients, built when first needed."""

    def connect() -> ClusterAccess:
        pod_identity = PodIdentity(cluster_name, trainer_role_arn) if trainer_role_arn else None
        api = KubernetesServingApi(cluster_name, region=region)
        return ClusterAccess(api=api, pod_identity=pod_identity)

    return connect
