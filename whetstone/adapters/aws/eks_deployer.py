"""Deployments on EKS: a vLLM Deployment and a ClusterIP Service per job, in its org's namespace.

The pod runs under the job's own ServiceAccount, associated through EKS Pod Identity with
the trainer role. Readiness is read from the Kubernetes API (its Deployment and pod); once
the server answers, the golden prompt is sent through the API server's service proxy and its
greedy answer compared with the one the trainer recorded for the saved model. A deployment
found failed has its objects deleted, so a broken server never keeps a GPU node.

The manifests, the reading of a server's state and the Kubernetes client live in
`whetstone.adapters.aws.kube`; `kubernetes` is imported only inside the client's calls, so
the API Lambda's cold start never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from whetstone.adapters.aws.kube.eks_auth import KubernetesApi
from whetstone.adapters.aws.kube.serving_manifests import (
    PORT_NAME,
    SERVING_APP,
    ServingSettings,
    deployment_name,
    endpoint_url,
    server_selector,
    serving_manifests,
)
from whetstone.adapters.aws.kube.serving_status import server_state
from whetstone.adapters.aws.kube.shared_manifests import LABEL_APP, LABEL_JOB, job_namespace
from whetstone.adapters.aws.kube.workload_identity import ClusterAccess, PodIdentity
from whetstone.core.catalog.hardware import get_gpu
from whetstone.core.job import Deployment, JobRecord, utcnow
from whetstone.core.serving import (
    GOLDEN_MAX_TOKENS,
    GOLDEN_MESSAGES,
    ServingProblem,
    check_golden,
    vllm_lora_rank,
)
from whetstone.core.serving_hardware import job_serving_hardware
from whetstone.observability import logger
from whetstone.service.serving_metrics import requests_answered

# Re-exported: runtime.py builds the deployer from these.
__all__ = ["ClusterAccess", "EksDeployer", "ServingSettings", "connect_to_cluster"]


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

    def start(
        self, job: JobRecord, model_uri: str, *, base_model: str | None, max_lora_rank: int
    ) -> Deployment:
        hardware = job_serving_hardware(job.spec, max_lora_rank)
        rank = vllm_lora_rank(max_lora_rank)
        self._cluster.apply_all(serving_manifests(job, model_uri, hardware, rank, self._settings))
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
        namespace = job_namespace(job, self._settings.cluster)
        api = self._cluster.api
        found = api.read("Deployment", namespace, deployment_name(job))
        pods = api.list_objects("Pod", namespace, server_selector(job)) if found is not None else []
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
        namespace = job_namespace(job, self._settings.cluster)
        cluster = self._cluster
        cluster.api.delete("Service", namespace, deployment_name(job))
        cluster.api.delete("Deployment", namespace, deployment_name(job))
        # Training is over (only completed jobs deploy): the job's identity is the server's.
        cluster.remove_identity(namespace, job.job_id)
        logger.info("deployment stopped", job_id=job.job_id)

    def served_job_ids(self) -> list[str]:
        """Job ids of every vLLM Deployment on the cluster."""
        found = self._cluster.api.list_objects("Deployment", None, {LABEL_APP: SERVING_APP})
        return sorted(
            {
                str(labels[LABEL_JOB])
                for item in found
                if LABEL_JOB in (labels := (item.get("metadata") or {}).get("labels") or {})
            }
        )

    def requests_answered(self, job: JobRecord) -> int | None:
        """vLLM's request counter, read from its /metrics through the service proxy."""
        namespace = job_namespace(job, self._settings.cluster)
        try:
            text = self._cluster.api.get_from_service(
                namespace, deployment_name(job), PORT_NAME, "/metrics"
            )
        except (LookupError, ValueError):
            return None
        return requests_answered(text)

    def remove_orphan(self, job_id: str) -> None:
        """Delete the Deployment, Service and service account of a job that has no record."""
        cluster = self._cluster
        for item in cluster.api.list_objects(
            "Deployment", None, {LABEL_APP: SERVING_APP, LABEL_JOB: job_id}
        ):
            namespace, name = item["metadata"]["namespace"], item["metadata"]["name"]
            cluster.api.delete("Service", namespace, name)
            cluster.api.delete("Deployment", namespace, name)
            cluster.remove_identity(namespace, job_id)
        logger.info("orphan deployment removed", job_id=job_id)


def connect_to_cluster(
    cluster_name: str, region: str, trainer_role_arn: str | None
) -> Callable[[], ClusterAccess]:
    """The cluster clients, built when first needed."""

    def connect() -> ClusterAccess:
        pod_identity = PodIdentity(cluster_name, trainer_role_arn) if trainer_role_arn else None
        api = KubernetesApi(cluster_name, region=region)
        return ClusterAccess(api=api, pod_identity=pod_identity)

    return connect
