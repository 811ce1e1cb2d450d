"""An in-memory Kubernetes API for the EKS compute: every object it is given is
validated against the real schema of the cluster's Kubernetes version first."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import kubernetes_validate

from whetstone.adapters.aws.eks_compute import LABEL_APP, LABEL_JOB, TRAINER_APP

KUBERNETES_VERSION = "1.33.0"
Key = tuple[str, str, str]  # kind, namespace, name


def validate(manifest: dict[str, Any]) -> None:
    """Raise kubernetes_validate's ValidationError unless the manifest fits the schema."""
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@dataclass
class FakeKube:
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    pods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[Key] = field(default_factory=list)
    reject_jobs: Exception | None = None
    # kind -> the error applying a manifest of that kind raises (any kind but Job)
    reject_kinds: dict[str, Exception] = field(default_factory=dict)
    serving_pods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Service name -> the model server's answer, or the error its request raises.
    served_answers: dict[str, str | Exception] = field(default_factory=dict)
    proxied: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)

    @staticmethod
    def _key(manifest: dict[str, Any]) -> Key:
        meta = manifest["metadata"]
        return manifest["kind"], meta.get("namespace", ""), meta["name"]

    # --- the KubeApi protocol ---
    def apply(self, manifest: dict[str, Any]) -> None:
        validate(manifest)
        if manifest["kind"] == "Job" and self.reject_jobs is not None:
            raise self.reject_jobs
        if manifest["kind"] in self.reject_kinds:
            raise self.reject_kinds[manifest["kind"]]
        self.objects.setdefault(self._key(manifest), copy.deepcopy(manifest))

    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        job = self.objects.get(("Job", namespace, name))
        return copy.deepcopy(job) if job is not None else None

    def list_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.pods.get(job_name, []))

    def list_events(self, namespace: str, names: Sequence[str]) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(e)
            for e in self.events
            if e["metadata"]["namespace"] == namespace and e["involvedObject"]["name"] in names
        ]

    def annotate_job(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        job = self.objects[("Job", namespace, name)]
        job["metadata"].setdefault("annotations", {}).update(annotations)

    def delete_job(self, namespace: str, name: str) -> None:
        if self.objects.pop(("Job", namespace, name), None) is not None:
            self.deleted.append(("Job", namespace, name))
        self.pods.pop(name, None)

    def delete_service_account(self, namespace: str, name: str) -> None:
        if self.objects.pop(("ServiceAccount", namespace, name), None) is not None:
            self.deleted.append(("ServiceAccount", namespace, name))

    def list_trainer_jobs(self) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(o)
            for (kind, _, _), o in self.objects.items()
            if kind == "Job" and o["metadata"].get("labels", {}).get(LABEL_APP) == TRAINER_APP
        ]

    # --- the ServingKubeApi additions ---
    def read_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get(("Deployment", namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def list_serving_pods(self, namespace: str, job_id: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.serving_pods.get(job_id, []))

    def delete_deployment(self, namespace: str, name: str) -> None:
        found = self.objects.pop(("Deployment", namespace, name), None)
        if found is not None:
            self.deleted.append(("Deployment", namespace, name))
            self.serving_pods.pop(found["metadata"]["labels"][LABEL_JOB], None)

    def delete_service(self, namespace: str, name: str) -> None:
        if self.objects.pop(("Service", namespace, name), None) is not None:
            self.deleted.append(("Service", namespace, name))

    def post_to_service(
        self, namespace: str, service: str, port: str, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        if ("Service", namespace, service) not in self.objects:
            raise LookupError(f"no Service {namespace}/{service}")
        self.proxied.append((namespace, service, path, copy.deepcopy(body)))
        content = self.served_answers[service]
        if isinstance(content, Exception):
            raise content
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}

    # --- what the cluster does on its own, driven by the test ---
    def job(self, job_id: str) -> dict[str, Any]:
        for (kind, _, name), manifest in self.objects.items():
            if kind == "Job" and name == job_id:
                return manifest
        raise KeyError(job_id)

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.objects]

    def start_pod(self, job_id: str, phase: str = "Running") -> None:
        job = self.job(job_id)
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{job_id}-abcde",
                "namespace": job["metadata"]["namespace"],
                "labels": {LABEL_JOB: job_id, "batch.kubernetes.io/job-name": job_id},
            },
            "spec": job["spec"]["template"]["spec"],
            "status": {"phase": phase},
        }
        validate(pod)
        self.pods[job_id] = [pod]
        job["status"] = {"active": 1}

    def finish_job(
        self, job_id: str, *, succeeded: bool, reason: str = "", message: str = ""
    ) -> None:
        job = self.job(job_id)
        kind = "Complete" if succeeded else "Failed"
        job["status"] = {
            "conditions": [
                {"type": kind, "status": "True", "reason": reason or kind, "message": message}
            ]
        }

    def add_event(
        self, job_id: str, reason: str, message: str, at: str, *, warning: bool = False
    ) -> None:
        job = self.job(job_id)
        namespace = job["metadata"]["namespace"]
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{job_id}.{len(self.events)}", "namespace": namespace},
            "involvedObject": {"kind": "Pod", "name": f"{job_id}-abcde", "namespace": namespace},
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "lastTimestamp": at,
            "count": 1,
        }
        validate(event)
        self.events.append(event)

    # --- a vLLM Deployment's life, driven by the test ---
    def deployment(self, job_id: str) -> dict[str, Any]:
        for (kind, _, _), manifest in self.objects.items():
            if kind == "Deployment" and manifest["metadata"]["labels"].get(LABEL_JOB) == job_id:
                return manifest
        raise KeyError(job_id)

    def serving_pod(self, job_id: str, status: dict[str, Any]) -> None:
        """The Deployment's one pod, in `status` (validated against the Pod schema)."""
        deployment = self.deployment(job_id)
        template = deployment["spec"]["template"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{deployment['metadata']['name']}-7d9f-abcde",
                "namespace": deployment["metadata"]["namespace"],
                "labels": template["metadata"]["labels"],
            },
            "spec": template["spec"],
            "status": status,
        }
        validate(pod)
        self.serving_pods[job_id] = [pod]

    def set_deployment_status(self, job_id: str, status: dict[str, Any]) -> None:
        self.deployment(job_id)["status"] = status


def container_status(
    name: str,
    *,
    ready: bool = False,
    state: dict[str, Any] | None = None,
    last_terminated: dict[str, Any] | None = None,
    restarts: int = 0,
) -> dict[str, Any]:
    """One entry of a pod's (init)containerStatuses."""
    status: dict[str, Any] = {
        "name": name,
        "image": "image",
        "imageID": "",
        "ready": ready,
        "restartCount": restarts,
        "state": state or {"running": {"startedAt": "2025-03-01T12:00:00Z"}},
    }
    if last_terminated is not None:
        status["lastState"] = {"terminated": last_terminated}
    return status
