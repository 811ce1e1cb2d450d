"""An in-memory Kubernetes API (the KubeApi protocol) for the EKS compute and deployer: every
object it is given is validated against the real schema of the cluster's Kubernetes version
first."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import kubernetes_validate

from whetstone.adapters.aws.kube.client import Headers, Manifest
from whetstone.adapters.aws.kube.shared_manifests import LABEL_JOB
from whetstone.adapters.aws.kube.training_manifests import JOB_NAME_LABEL

KUBERNETES_VERSION = "1.33.0"
Key = tuple[str, str, str]  # kind, namespace, name


def validate(manifest: dict[str, Any]) -> None:
    """Raise kubernetes_validate's ValidationError unless the manifest fits the schema."""
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@dataclass
class FakeKube:
    """Objects by (kind, namespace, name), pods and events among them; a Job's or a
    Deployment's pods go with it."""

    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    deleted: list[Key] = field(default_factory=list)
    # kind -> the error applying a manifest of that kind raises
    reject_kinds: dict[str, Exception] = field(default_factory=dict)
    # Service name -> the model server's answer, or the error its request raises.
    served_answers: dict[str, str | Exception] = field(default_factory=dict)
    proxied: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    # The headers of each proxied POST, in order.
    proxied_headers: list[dict[str, str]] = field(default_factory=list)
    # Service name -> the model server's /metrics page.
    served_metrics: dict[str, str] = field(default_factory=dict)
    # pod -> the Job or Deployment it belongs to
    owners: dict[Key, Key] = field(default_factory=dict)

    @staticmethod
    def _key(manifest: dict[str, Any]) -> Key:
        meta = manifest["metadata"]
        return manifest["kind"], meta.get("namespace", ""), meta["name"]

    # --- the KubeApi protocol ---
    def apply(self, manifest: dict[str, Any]) -> None:
        validate(manifest)
        if manifest["kind"] in self.reject_kinds:
            raise self.reject_kinds[manifest["kind"]]
        self.objects.setdefault(self._key(manifest), copy.deepcopy(manifest))

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def list_objects(
        self, kind: str, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        wanted = (labels or {}).items()
        return [
            copy.deepcopy(found)
            for (k, ns, _), found in self.objects.items()
            if k == kind
            and namespace in (None, ns)
            and wanted <= (found["metadata"].get("labels") or {}).items()
        ]

    def annotate(self, kind: str, namespace: str, name: str, annotations: dict[str, str]) -> None:
        found = self.objects[(kind, namespace, name)]
        found["metadata"].setdefault("annotations", {}).update(annotations)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace, name)
        if self.objects.pop(key, None) is not None:
            self.deleted.append(key)
        for pod in [pod for pod, owner in self.owners.items() if owner == key]:
            self.objects.pop(pod, None)
            del self.owners[pod]

    def post_to_service(
        self, namespace: str, service: str, port: str, path: str, body: Manifest, headers: Headers
    ) -> dict[str, Any]:
        if ("Service", namespace, service) not in self.objects:
            raise LookupError(f"no Service {namespace}/{service}")
        self.proxied.append((namespace, service, path, copy.deepcopy(body)))
        self.proxied_headers.append(dict(headers))
        content = self.served_answers[service]
        if isinstance(content, Exception):
            raise content
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}

    def get_from_service(self, namespace: str, service: str, port: str, path: str) -> str:
        if (
            "Service",
            namespace,
            service,
        ) not in self.objects or service not in self.served_metrics:
            raise LookupError(f"no Service {namespace}/{service} answering {path}")
        return self.served_metrics[service]

    # --- what the cluster does on its own, driven by the test ---
    def _owned(self, kind: str, job_id: str) -> dict[str, Any]:
        for (k, _, _), manifest in self.objects.items():
            if k == kind and manifest["metadata"]["labels"].get(LABEL_JOB) == job_id:
                return manifest
        raise KeyError(job_id)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._owned("Job", job_id)

    def deployment(self, job_id: str) -> dict[str, Any]:
        return self._owned("Deployment", job_id)

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.objects]

    def _pod(
        self, owner: dict[str, Any], name: str, extra_labels: dict[str, str], status: Any
    ) -> None:
        """The owner's one pod, from its template, in `status` (checked against the schema)."""
        template = owner["spec"]["template"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": owner["metadata"]["namespace"],
                "labels": {**template["metadata"]["labels"], **extra_labels},
            },
            "spec": template["spec"],
            "status": status,
        }
        validate(pod)
        for key in [key for key, by in self.owners.items() if by == self._key(owner)]:
            self.objects.pop(key, None)
        self.objects[self._key(pod)] = pod
        self.owners[self._key(pod)] = self._key(owner)

    def start_pod(self, job_id: str, phase: str = "Running") -> None:
        job = self.job(job_id)
        labels = {JOB_NAME_LABEL: job_id}  # as the Job controller labels its pods
        self._pod(job, f"{job_id}-abcde", labels, {"phase": phase})
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
        namespace = self.job(job_id)["metadata"]["namespace"]
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{job_id}.{len(self.objects)}", "namespace": namespace},
            "involvedObject": {"kind": "Pod", "name": f"{job_id}-abcde", "namespace": namespace},
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "lastTimestamp": at,
            "count": 1,
        }
        validate(event)
        self.objects[self._key(event)] = event

    # --- a vLLM Deployment's life, driven by the test ---
    def serving_pod(self, job_id: str, status: dict[str, Any]) -> None:
        """The Deployment's one pod, in `status` (validated against the Pod schema)."""
        deployment = self.deployment(job_id)
        self._pod(deployment, f"{deployment['metadata']['name']}-7d9f-abcde", {}, status)

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


def condition(
    kind: str, status: str, reason: str, message: str = "", *, since: datetime | None = None
) -> dict[str, str]:
    """One entry of an object's status.conditions, true or not `since`."""
    found = {"type": kind, "status": status, "reason": reason}
    if message:
        found["message"] = message
    if since is not None:
        found["lastTransitionTime"] = since.isoformat().replace("+00:00", "Z")
    return found
