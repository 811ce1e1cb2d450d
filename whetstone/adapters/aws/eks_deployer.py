"""Deployments on EKS: a vLLM Deployment and a ClusterIP Service per deploy, in its org's
namespace, named after the deploy's generation so a deploy only ever deletes its own.

The pod runs under the deploy's own ServiceAccount, associated through EKS Pod Identity with
the read-only serving role, narrowed to the job's model. vLLM requires the deploy's key
(a Secret). Readiness is read from the Kubernetes API (its Deployment and pod); once the
server answers, the golden prompt is sent through the API server's service proxy, with the
key, and its greedy answer compared with the one the trainer recorded for the saved model.
A deployment found failed has its objects deleted, so a broken server never keeps a GPU node.

The manifests, the reading of a server's state and the Kubernetes client live in
`whetstone.adapters.aws.kube`; `kubernetes` is imported only inside the client's calls, so
the API Lambda's cold start never pays for it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Any

from whetstone.adapters.aws.kube.eks_auth import KubernetesApi
from whetstone.adapters.aws.kube.serving_identity import model_read_policy
from whetstone.adapters.aws.kube.serving_manifests import (
    KEY_HEADER,
    LABEL_GENERATION,
    PORT_NAME,
    SECRET_KEY_NAME,
    SERVING_APP,
    ServingSettings,
    deployment_name,
    endpoint_url,
    generation_objects,
    key_secret_name,
    recorded_generation,
    served_base_name,
    server_name,
    server_selector,
    serving_manifests,
)
from whetstone.adapters.aws.kube.serving_status import server_state
from whetstone.adapters.aws.kube.shared_manifests import LABEL_APP, LABEL_JOB, job_namespace
from whetstone.adapters.aws.kube.workload_identity import ClusterAccess, PodIdentity
from whetstone.core.catalog.hardware import get_gpu
from whetstone.core.job import Deployment, JobRecord, utcnow
from whetstone.core.server_keys import new_generation, new_server_key
from whetstone.core.serving import (
    GOLDEN_MAX_TOKENS,
    GOLDEN_MESSAGES,
    ServingProblem,
    check_golden,
    vllm_lora_rank,
)
from whetstone.core.serving_hardware import job_serving_hardware
from whetstone.core.tokens import hash_token
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
        generation, key = new_generation(), new_server_key()
        manifests = serving_manifests(
            job, model_uri, hardware, rank, self._settings, generation=generation, key=key
        )
        policy = model_read_policy(model_uri, self._settings.cluster.region)
        try:
            self._cluster.apply_all(manifests, session_policy=policy)
        except Exception:
            self._remove(job, generation)  # what this start created, and nothing else
            raise
        now = self._clock()
        logger.info(
            "deployment started",
            job_id=job.job_id,
            generation=generation,
            gpu_type=hardware.gpu_type.value,
            gpu_count=hardware.gpu_count,
        )
        return Deployment(
            status="starting",
            model=job.job_id,
            base_model=served_base_name(job),
            endpoint=endpoint_url(job, generation, self._settings),
            max_lora_rank=rank,
            generation=generation,
            key_sha256=hash_token(key),
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
        selector = server_selector(job, recorded_generation(job))
        pods = api.list_objects("Pod", namespace, selector) if found is not None else []
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
            key = self._key(job, namespace)
            answer = self._cluster.api.post_to_service(
                namespace,
                deployment_name(job),
                PORT_NAME,
                "/v1/chat/completions",
                body,
                {KEY_HEADER: key} if key else {},
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
        self._remove(job, recorded_generation(job))
        logger.info("deployment stopped", job_id=job.job_id)

    def request_headers(self, job: JobRecord) -> dict[str, str]:
        """What a request sent straight to the job's server carries: its key."""
        key = self._key(job, job_namespace(job, self._settings.cluster))
        return {"authorization": f"Bearer {key}"} if key else {}

    def _key(self, job: JobRecord, namespace: str) -> str | None:
        """The recorded deploy's key, from its Secret (None before generations had keys)."""
        generation = recorded_generation(job)
        if generation is None:
            return None
        name = key_secret_name(server_name(job.job_id, generation))
        secret = self._cluster.api.read("Secret", namespace, name)
        encoded = ((secret or {}).get("data") or {}).get(SECRET_KEY_NAME)
        return base64.b64decode(encoded).decode() if encoded else None

    def _remove(self, job: JobRecord, generation: str | None) -> None:
        """Delete what the deploy of `generation` created: its objects, its service account
        and Pod Identity association (before generations: the job's own, as training is
        over once a job deploys)."""
        namespace = job_namespace(job, self._settings.cluster)
        cluster = self._cluster
        for kind, name in generation_objects(job.job_id, generation):
            cluster.api.delete(kind, namespace, name)
        service_account = server_name(job.job_id, generation) if generation else job.job_id
        cluster.remove_identity(namespace, service_account)

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
        """Delete every deploy of a job that has no record: the objects and identity of each
        generation its Deployments carry."""
        cluster = self._cluster
        for item in cluster.api.list_objects(
            "Deployment", None, {LABEL_APP: SERVING_APP, LABEL_JOB: job_id}
        ):
            namespace = item["metadata"]["namespace"]
            generation = (item["metadata"].get("labels") or {}).get(LABEL_GENERATION)
            for kind, name in generation_objects(job_id, generation):
                cluster.api.delete(kind, namespace, name)
            cluster.remove_identity(
                namespace, server_name(job_id, generation) if generation else job_id
            )
        logger.info("orphan deployment removed", job_id=job_id)


def connect_to_cluster(
    cluster_name: str, region: str, serving_role_arn: str | None
) -> Callable[[], ClusterAccess]:
    """The cluster clients, built when first needed; the servers' pods get the serving role
    (without one, they get no AWS credentials and cannot fetch the model)."""

    def connect() -> ClusterAccess:
        pod_identity = PodIdentity(cluster_name, serving_role_arn) if serving_role_arn else None
        api = KubernetesApi(cluster_name, region=region)
        return ClusterAccess(api=api, pod_identity=pod_identity)

    return connect
