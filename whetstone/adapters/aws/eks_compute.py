"""Compute on EKS: one Kubernetes Job per fine-tuning job, on a GPU node Karpenter provides.

Each organization gets a namespace (created on the first job) with the restricted
Pod Security Standard and a ResourceQuota that caps its GPUs and Jobs. Each job
gets a ServiceAccount named after it (its EKS Pod Identity session carries that
name, which the trainer role's policy uses to confine S3 to the job's prefix) and
a Job whose pod asks for the job's GPU type by Karpenter's node labels, tolerates
the GPU taint, keeps its node to itself, and runs as a non-root user on a
read-only root filesystem with scratch space from ephemeral storage.

The manifest builders are pure functions returning dicts; the `kubernetes`
package is imported only by `KubernetesApi`, which talks to the API server with
an STS-presigned token (the algorithm of `aws eks get-token`).
"""

from __future__ import annotations

import base64
import math
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from whetstone.core.catalog.hardware import GPU_TAINT_KEY, get_gpu
from whetstone.core.errors import TransientError
from whetstone.core.job import JobRecord, LogEntry, LogLevelName
from whetstone.core.trainer_exit import TrainerExit
from whetstone.ports import ComputeState, ComputeStatus, LogStore

if TYPE_CHECKING:
    from mypy_boto3_eks.client import EKSClient
    from mypy_boto3_sts.client import STSClient

Manifest = dict[str, Any]

TRAINER_APP = "whetstone-trainer"
CONTAINER_NAME = "trainer"
LABEL_APP = "app.kubernetes.io/name"
LABEL_JOB = "whetstone.dev/job-id"
LABEL_ORG = "whetstone.dev/org-id"
# The time of the newest Kubernetes event already copied into the deployment log.
EVENTS_SEEN_ANNOTATION = "whetstone.dev/events-copied-until"
GPU_RESOURCE = "nvidia.com/gpu"
TRAINER_UID = 1000  # the `trainer` user of trainer_container/Dockerfile
BACKOFF_LIMIT = 3
SHM_SIZE = "16Gi"
CPU_REQUEST = "2"
MEMORY_REQUEST = "8Gi"
K8S_AWS_ID_HEADER = "x-k8s-aws-id"
TOKEN_PREFIX = "k8s-aws-v1."
TOKEN_EXPIRY_S = 60
_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class JobSettings:
    """Cluster-wide choices the manifests follow (from Settings)."""

    namespace_prefix: str = "whetstone-"
    event_bus_name: str = "whetstone"
    region: str = "us-east-1"
    ttl_s: int = 3600
    deadline_factor: float = 2.0
    deadline_floor_s: int = 3600
    grace_s: int = 120  # the trainer checkpoints and uploads after SIGTERM
    max_active_gpus: int = 16
    max_active_jobs: int = 10


def namespace_name(org_id: str, prefix: str) -> str:
    """A DNS-1123 label for the organization: lowercase, at most 63 characters."""
    slug = _DNS_LABEL.sub("-", org_id.lower()).strip("-") or "org"
    return (prefix + slug)[:63].rstrip("-")


def _labels(job: JobRecord | None, org_id: str) -> dict[str, str]:
    labels = {LABEL_APP: TRAINER_APP, LABEL_ORG: _DNS_LABEL.sub("-", org_id.lower())[:63]}
    if job is not None:
        labels[LABEL_JOB] = job.job_id
    return labels


def namespace_manifest(org_id: str, settings: JobSettings) -> Manifest:
    """The organization's namespace, enforcing the restricted Pod Security Standard."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace_name(org_id, settings.namespace_prefix),
            "labels": {
                LABEL_ORG: _labels(None, org_id)[LABEL_ORG],
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }


def resource_quota_manifest(org_id: str, settings: JobSettings) -> Manifest:
    """The organization's ceiling: GPUs and Jobs, beside the API's own quota check."""
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": "whetstone-quota",
            "namespace": namespace_name(org_id, settings.namespace_prefix),
        },
        "spec": {
            "hard": {
                f"requests.{GPU_RESOURCE}": str(settings.max_active_gpus),
                "count/jobs.batch": str(settings.max_active_jobs * 2),
            }
        },
    }


def service_account_manifest(job: JobRecord, settings: JobSettings) -> Manifest:
    """One ServiceAccount per job, named after it: its Pod Identity session tag
    `kubernetes-service-account` is the job id, which the trainer role's policy puts
    into the only S3 prefix it may touch."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": job.job_id,
            "namespace": namespace_name(job.org_id, settings.namespace_prefix),
            "labels": _labels(job, job.org_id),
        },
        "automountServiceAccountToken": False,
    }


def active_deadline_s(job: JobRecord, settings: JobSettings) -> int:
    """The estimate with a margin: past it Kubernetes kills the trainer (a runaway job
    never bills forever)."""
    estimated = job.estimate.estimated_hours * 3600
    return int(math.ceil(estimated * settings.deadline_factor)) + settings.deadline_floor_s


def job_manifest(job: JobRecord, plan_uri: str, image: str, settings: JobSettings) -> Manifest:
    """The Kubernetes Job that runs `python -m trainer --spec <plan_uri>` for `job`."""
    hardware = job.spec.hardware
    gpu = get_gpu(hardware.gpu_type)
    labels = _labels(job, job.org_id)
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
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "shm", "mountPath": "/dev/shm"},
        ],
    }
    pod_spec = {
        "restartPolicy": "Never",
        "serviceAccountName": job.job_id,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": settings.grace_s,
        "nodeSelector": {
            **gpu.node_selector(hardware.gpu_count),
            "kubernetes.io/arch": "amd64",
            "karpenter.sh/capacity-type": "on-demand",
        },
        "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
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
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": TRAINER_UID,
            "runAsGroup": TRAINER_UID,
            "fsGroup": TRAINER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "scratch", "emptyDir": {"sizeLimit": storage}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "10Gi"}},
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job.job_id,
            "namespace": namespace_name(job.org_id, settings.namespace_prefix),
            "labels": labels,
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
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {"karpenter.sh/do-not-disrupt": "true"},
                },
                "spec": pod_spec,
            },
        },
    }


def manifests_for(
    job: JobRecord, plan_uri: str, image: str, settings: JobSettings
) -> list[Manifest]:
    """Everything a launch applies, in order."""
    return [
        namespace_manifest(job.org_id, settings),
        resource_quota_manifest(job.org_id, settings),
        service_account_manifest(job, settings),
        job_manifest(job, plan_uri, image, settings),
    ]


def _condition(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def job_state(job: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]]) -> ComputeStatus:
    """Where a trainer is, from its Job object and its pods (pure)."""
    if job is None:
        return ComputeStatus(state=ComputeState.MISSING, message="no Kubernetes Job")
    if _condition(job, "Complete") is not None:
        return ComputeStatus(state=ComputeState.SUCCEEDED)
    failed = _condition(job, "Failed")
    if failed is not None:
        reason = failed.get("reason") or "Failed"
        detail = failed.get("message") or ""
        if reason == "DeadlineExceeded":
            detail = "the trainer ran past its deadline (the estimate with a margin)"
        return ComputeStatus(state=ComputeState.FAILED, message=f"{reason}: {detail}".strip(": "))
    running = any((pod.get("status") or {}).get("phase") == "Running" for pod in pods)
    return ComputeStatus(state=ComputeState.RUNNING if running else ComputeState.PENDING)


def _event_time(event: Mapping[str, Any]) -> str:
    value = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
    return str(value or "")


def _parse_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)


def new_event_entries(
    events: Sequence[Mapping[str, Any]], seen_until: str | None
) -> tuple[list[LogEntry], str | None]:
    """Kubernetes events newer than `seen_until` as deployment log lines, and the new mark."""
    fresh = sorted(
        (
            e
            for e in events
            if _event_time(e) and (seen_until is None or _event_time(e) > seen_until)
        ),
        key=_event_time,
    )
    entries = []
    for event in fresh:
        level: LogLevelName = "warning" if event.get("type") == "Warning" else "info"
        involved = event.get("involvedObject") or {}
        entries.append(
            LogEntry(
                time=_parse_time(_event_time(event)),
                source="deployment",
                level=level,
                message=str(event.get("message") or event.get("reason") or "event"),
                fields={
                    "reason": event.get("reason"),
                    "object": f"{involved.get('kind', '')}/{involved.get('name', '')}",
                    "count": event.get("count"),
                },
            )
        )
    return entries, (_event_time(fresh[-1]) if fresh else seen_until)


class KubeApi(Protocol):
    """The few Kubernetes calls the compute needs, on plain dicts."""

    def apply(self, manifest: Manifest) -> None:
        """Create the object; an existing one (409) is left as it is."""

    def read_job(self, namespace: str, name: str) -> Manifest | None: ...

    def list_pods(self, namespace: str, job_name: str) -> list[Manifest]: ...

    def list_events(self, namespace: str, names: Sequence[str]) -> list[Manifest]:
        """Events whose involved object is one of `names`."""

    def annotate_job(self, namespace: str, name: str, annotations: dict[str, str]) -> None: ...

    def delete_job(self, namespace: str, name: str) -> None:
        """Delete the Job and its pods (foreground); a missing Job is fine."""

    def delete_service_account(self, namespace: str, name: str) -> None: ...

    def list_trainer_jobs(self) -> list[Manifest]:
        """Every trainer Job in every namespace (for the reconciler)."""


class EksCompute:
    """The Compute of the aws runtime."""

    def __init__(
        self,
        api: KubeApi,
        settings: JobSettings,
        logs: LogStore,
        *,
        pod_identity: PodIdentity | None = None,
    ) -> None:
        self._api = api
        self._settings = settings
        self._logs = logs
        self._pod_identity = pod_identity

    def _namespace(self, job: JobRecord) -> str:
        return namespace_name(job.org_id, self._settings.namespace_prefix)

    def launch(self, job: JobRecord, plan_uri: str, image: str) -> None:
        for manifest in manifests_for(job, plan_uri, image, self._settings):
            if manifest["kind"] == "Job" and self._pod_identity is not None:
                self._pod_identity.associate(self._namespace(job), job.job_id)
            self._api.apply(manifest)

    def status(self, job: JobRecord) -> ComputeStatus:
        namespace = self._namespace(job)
        k8s_job = self._api.read_job(namespace, job.job_id)
        pods = self._api.list_pods(namespace, job.job_id) if k8s_job is not None else []
        if k8s_job is not None:
            self._copy_events(namespace, job, k8s_job, pods)
        return job_state(k8s_job, pods)

    def _copy_events(
        self, namespace: str, job: JobRecord, k8s_job: Manifest, pods: Sequence[Manifest]
    ) -> None:
        names = [job.job_id, *(str(p["metadata"]["name"]) for p in pods)]
        annotations = (k8s_job.get("metadata") or {}).get("annotations") or {}
        entries, mark = new_event_entries(
            self._api.list_events(namespace, names), annotations.get(EVENTS_SEEN_ANNOTATION)
        )
        if entries and mark is not None:
            self._logs.append(job.job_id, entries)
            self._api.annotate_job(namespace, job.job_id, {EVENTS_SEEN_ANNOTATION: mark})

    def stop(self, job: JobRecord) -> None:
        """Delete the Job (its pod gets SIGTERM and the grace period to checkpoint) and the
        job's service account and Pod Identity association."""
        namespace = self._namespace(job)
        self._api.delete_job(namespace, job.job_id)
        self._api.delete_service_account(namespace, job.job_id)
        if self._pod_identity is not None:
            self._pod_identity.dissociate(namespace, job.job_id)

    def trainer_job_ids(self) -> list[str]:
        """Job ids of every trainer Job the cluster holds."""
        return sorted(
            str(item["metadata"]["labels"][LABEL_JOB])
            for item in self._api.list_trainer_jobs()
            if LABEL_JOB in ((item.get("metadata") or {}).get("labels") or {})
        )


class PodIdentity:
    """EKS Pod Identity associations: the job's service account → the trainer role."""

    def __init__(self, cluster_name: str, role_arn: str, client: EKSClient | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("eks")
        self._eks = client
        self._cluster = cluster_name
        self._role_arn = role_arn

    def associate(self, namespace: str, service_account: str) -> None:
        try:
            self._eks.create_pod_identity_association(
                clusterName=self._cluster,
                namespace=namespace,
                serviceAccount=service_account,
                roleArn=self._role_arn,
            )
        except self._eks.exceptions.ResourceInUseException:
            pass  # launched before: the association exists

    def dissociate(self, namespace: str, service_account: str) -> None:
        listed = self._eks.list_pod_identity_associations(
            clusterName=self._cluster, namespace=namespace, serviceAccount=service_account
        )
        for association in listed.get("associations", []):
            self._eks.delete_pod_identity_association(
                clusterName=self._cluster, associationId=association["associationId"]
            )


# --- talking to the API server ------------------------------------------------------------


class KubernetesUnavailable(TransientError):
    """The API server throttled (429), failed (5xx) or could not be reached: worth a retry.
    The state machine's Retry matches this name."""


@contextmanager
def _transient_errors() -> Iterator[None]:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as error:
        status = error.status or 0
        if status == 429 or status >= 500:
            raise KubernetesUnavailable(f"the Kubernetes API answered {status}") from error
        raise
    except HTTPError as error:
        raise KubernetesUnavailable(f"the Kubernetes API is unreachable: {error}") from error


def _retryable(method: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with _transient_errors():
            return method(*args, **kwargs)

    wrapped.__name__ = method.__name__
    wrapped.__doc__ = method.__doc__
    return wrapped


def eks_token(sts: STSClient, cluster_name: str) -> str:
    """A bearer token for the cluster: a presigned STS GetCallerIdentity URL that carries
    the cluster name in the signed `x-k8s-aws-id` header, as `aws eks get-token` makes it."""

    def keep_cluster(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if K8S_AWS_ID_HEADER in params:
            context[K8S_AWS_ID_HEADER] = params.pop(K8S_AWS_ID_HEADER)

    def add_header(request: Any, **_: Any) -> None:
        if K8S_AWS_ID_HEADER in request.context:
            request.headers[K8S_AWS_ID_HEADER] = request.context[K8S_AWS_ID_HEADER]

    events = sts.meta.events
    events.register("provide-client-params.sts.GetCallerIdentity", keep_cluster)
    events.register("before-sign.sts.GetCallerIdentity", add_header)
    try:
        url = sts.generate_presigned_url(
            "get_caller_identity",
            Params={K8S_AWS_ID_HEADER: cluster_name},
            ExpiresIn=TOKEN_EXPIRY_S,
            HttpMethod="GET",
        )
    finally:
        events.unregister("provide-client-params.sts.GetCallerIdentity", keep_cluster)
        events.unregister("before-sign.sts.GetCallerIdentity", add_header)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


class KubernetesApi:
    """KubeApi over the official client, authenticated with a fresh EKS token per call."""

    def __init__(
        self,
        cluster_name: str,
        *,
        eks: EKSClient | None = None,
        sts: STSClient | None = None,
        region: str | None = None,
    ) -> None:
        import boto3

        self._cluster = cluster_name
        self._eks = eks or boto3.client("eks", region_name=region)
        self._sts = sts or boto3.client(
            "sts",
            region_name=region,
            endpoint_url=f"https://sts.{region}.amazonaws.com" if region else None,
        )
        self._endpoint: str | None = None
        self._ca_file: str | None = None

    def _client(self) -> Any:
        from kubernetes import client

        if self._endpoint is None:
            cluster = self._eks.describe_cluster(name=self._cluster)["cluster"]
            with tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False) as ca:
                ca.write(base64.b64decode(cluster["certificateAuthority"]["data"]))
            self._endpoint, self._ca_file = cluster["endpoint"], ca.name
        configuration = client.Configuration()
        configuration.host = self._endpoint
        configuration.ssl_ca_cert = self._ca_file
        configuration.api_key = {"BearerToken": eks_token(self._sts, self._cluster)}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return client.ApiClient(configuration)

    @staticmethod
    def _missing_ok(error: Exception, *statuses: int) -> bool:
        return getattr(error, "status", None) in statuses

    @_retryable
    def apply(self, manifest: Manifest) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api = self._client()
        # The typed client wants models; plain dicts are what it serializes anyway.
        core: Any = client.CoreV1Api(api)
        batch: Any = client.BatchV1Api(api)
        namespace = manifest["metadata"].get("namespace")
        kind = manifest["kind"]
        try:
            if kind == "Namespace":
                core.create_namespace(manifest)
            elif kind == "ResourceQuota":
                core.create_namespaced_resource_quota(namespace, manifest)
            elif kind == "ServiceAccount":
                core.create_namespaced_service_account(namespace, manifest)
            elif kind == "Job":
                batch.create_namespaced_job(namespace, manifest)
            else:
                raise ValueError(f"no way to create a {kind}")
        except ApiException as error:
            if not self._missing_ok(error, 409):
                raise

    @_retryable
    def read_job(self, namespace: str, name: str) -> Manifest | None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api = self._client()
        try:
            job = client.BatchV1Api(api).read_namespaced_job(name, namespace)
        except ApiException as error:
            if self._missing_ok(error, 404):
                return None
            raise
        return dict(api.sanitize_for_serialization(job))

    @_retryable
    def list_pods(self, namespace: str, job_name: str) -> list[Manifest]:
        from kubernetes import client

        api = self._client()
        pods = client.CoreV1Api(api).list_namespaced_pod(
            namespace, label_selector=f"batch.kubernetes.io/job-name={job_name}"
        )
        return list(api.sanitize_for_serialization(pods).get("items", []))

    @_retryable
    def list_events(self, namespace: str, names: Sequence[str]) -> list[Manifest]:
        from kubernetes import client

        api = self._client()
        events = client.CoreV1Api(api).list_namespaced_event(namespace)
        wanted = set(names)
        return [
            item
            for item in api.sanitize_for_serialization(events).get("items", [])
            if (item.get("involvedObject") or {}).get("name") in wanted
        ]

    @_retryable
    def annotate_job(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        from kubernetes import client

        client.BatchV1Api(self._client()).patch_namespaced_job(
            name, namespace, {"metadata": {"annotations": annotations}}
        )

    @_retryable
    def delete_job(self, namespace: str, name: str) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            client.BatchV1Api(self._client()).delete_namespaced_job(
                name, namespace, propagation_policy="Foreground"
            )
        except ApiException as error:
            if not self._missing_ok(error, 404):
                raise

    @_retryable
    def delete_service_account(self, namespace: str, name: str) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            client.CoreV1Api(self._client()).delete_namespaced_service_account(name, namespace)
        except ApiException as error:
            if not self._missing_ok(error, 404):
                raise

    @_retryable
    def list_trainer_jobs(self) -> list[Manifest]:
        from kubernetes import client

        api = self._client()
        jobs = client.BatchV1Api(api).list_job_for_all_namespaces(
            label_selector=f"{LABEL_APP}={TRAINER_APP}"
        )
        return list(api.sanitize_for_serialization(jobs).get("items", []))
