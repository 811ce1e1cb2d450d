"""Compute on EKS: one Kubernetes Job per trainer stage of a fine-tuning job; the train
stage on a GPU node Karpenter provides, prepare and finalize on its CPU pool.

Each organization gets a namespace (created on the first job) with the restricted Pod
Security Standard and a ResourceQuota that caps its GPUs and Jobs; each job a ServiceAccount
named after it (its EKS Pod Identity session carries that name, which the trainer role's
policy uses to confine S3 to the job's prefix) and the Job. The manifests, the reading of a
Job's state and the Kubernetes client live in `whetstone.adapters.aws.kube`.
"""

from __future__ import annotations

from whetstone.adapters.aws.kube.client import KubeApi, Manifest
from whetstone.adapters.aws.kube.eks_auth import KubernetesApi
from whetstone.adapters.aws.kube.shared_manifests import (
    LABEL_APP,
    LABEL_JOB,
    TRAINER_APP,
    JobSettings,
    job_namespace,
)
from whetstone.adapters.aws.kube.training_manifests import (
    manifests_for,
    stage_job_name,
    trainer_pod_selector,
)
from whetstone.adapters.aws.kube.training_status import (
    EVENTS_SEEN_ANNOTATION,
    job_state,
    new_event_entries,
)
from whetstone.adapters.aws.kube.workload_identity import ClusterAccess, PodIdentity
from whetstone.core.events import TrainerStage
from whetstone.core.job import JobRecord
from whetstone.ports import ComputeStatus, LogStore

# Re-exported: runtime.py builds the compute from these.
__all__ = ["EksCompute", "JobSettings", "KubernetesApi", "PodIdentity"]


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
        self._cluster = ClusterAccess(api, pod_identity)
        self._settings = settings
        self._logs = logs

    def launch(
        self, job: JobRecord, plan_uri: str, image: str, stage: TrainerStage = TrainerStage.TRAIN
    ) -> None:
        self._cluster.apply_all(manifests_for(job, plan_uri, image, self._settings, stage))

    def status(self, job: JobRecord, stage: TrainerStage = TrainerStage.TRAIN) -> ComputeStatus:
        api = self._cluster.api
        namespace = job_namespace(job, self._settings)
        name = stage_job_name(job, stage)
        k8s_job = api.read("Job", namespace, name)
        if k8s_job is None:
            return job_state(None, [])
        pods = api.list_objects("Pod", namespace, trainer_pod_selector(job, stage))
        names = [name, *(str(pod["metadata"]["name"]) for pod in pods)]
        self._copy_events(job, name, k8s_job, names)
        return job_state(k8s_job, pods)

    def _copy_events(self, job: JobRecord, name: str, k8s_job: Manifest, names: list[str]) -> None:
        """The events of the Job and its pods not copied yet, into the deployment log."""
        api = self._cluster.api
        namespace = job_namespace(job, self._settings)
        events = [
            event
            for event in api.list_objects("Event", namespace)
            if (event.get("involvedObject") or {}).get("name") in names
        ]
        annotations = (k8s_job.get("metadata") or {}).get("annotations") or {}
        entries, mark = new_event_entries(events, annotations.get(EVENTS_SEEN_ANNOTATION))
        if entries and mark is not None:
            self._logs.append(job.job_id, entries)
            api.annotate("Job", namespace, name, {EVENTS_SEEN_ANNOTATION: mark})

    def stop(self, job: JobRecord) -> None:
        """Delete the Job of every stage (a pod gets SIGTERM and the grace period to
        checkpoint) and the job's service account and Pod Identity association."""
        namespace = job_namespace(job, self._settings)
        for stage in TrainerStage:
            self._cluster.api.delete("Job", namespace, stage_job_name(job, stage))
        self._cluster.remove_identity(namespace, job.job_id)

    def remove_orphan(self, job_id: str) -> None:
        """Delete every trainer Job labelled with `job_id` (whatever its namespace or stage)
        and the job's service account: what a job whose record was deleted left behind."""
        api = self._cluster.api
        namespaces: set[str] = set()
        for item in api.list_objects("Job", None, {LABEL_APP: TRAINER_APP, LABEL_JOB: job_id}):
            meta = item["metadata"]
            api.delete("Job", meta["namespace"], meta["name"])
            namespaces.add(meta["namespace"])
        for namespace in sorted(namespaces):
            self._cluster.remove_identity(namespace, job_id)

    def trainer_job_ids(self) -> list[str]:
        """Job ids of every trainer Job the cluster holds (once each, whatever its stages)."""
        return sorted(
            {
                str(item["metadata"]["labels"][LABEL_JOB])
                for item in self._cluster.api.list_objects("Job", None, {LABEL_APP: TRAINER_APP})
                if LABEL_JOB in ((item.get("metadata") or {}).get("labels") or {})
            }
        )
