"""A Kubernetes API whose Jobs really run: creating a Job starts its container as a local
subprocess, built from the manifest alone (the container's command, or the image's
ENTRYPOINT from trainer_container/Dockerfile, its args and its env, with each volume mount
a folder of the pod's own), and a small Job controller acts on the pod's end as the
manifest's podFailurePolicy and backoffLimit say. Deleting a Job stops its pod the way the
kubelet does: SIGTERM, the grace period, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from support.kube import FakeKube, Key, condition
from whetstone.adapters.aws.kube.training_manifests import JOB_NAME_LABEL

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "trainer_container" / "Dockerfile"
# What the image sets that the manifest does not: its layout (/app holds whetstone/ and
# trainer/, here the repository and trainer_container/) and its Python settings.
IMAGE_ENV = {
    "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'trainer_container'}",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}
# The harness waits this long at most for a stopped pod (the manifest may grant minutes).
MAX_GRACE_S = 60


def image_entrypoint() -> list[str]:
    """The exec-form ENTRYPOINT of the trainer image, `python` being this interpreter (the
    image's virtualenv)."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("ENTRYPOINT")]
    command = [str(part) for part in json.loads(lines[-1].removeprefix("ENTRYPOINT"))]
    return [sys.executable if part == "python" else part for part in command]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rule_action(policy: dict[str, Any], exit_code: int, disrupted: bool) -> str:
    """The action of the first podFailurePolicy rule matching the pod's end ("Count" when
    none does)."""
    for rule in policy.get("rules", []):
        on_conditions = rule.get("onPodConditions") or []
        if disrupted and any(c["type"] == "DisruptionTarget" for c in on_conditions):
            return str(rule["action"])
        on_codes = rule.get("onExitCodes")
        if on_codes and (exit_code in on_codes["values"]) == (on_codes["operator"] == "In"):
            return str(rule["action"])
    return "Count"


@dataclass
class Pod:
    name: str
    job: Key
    process: subprocess.Popen[bytes]
    folder: Path
    disrupted: bool = False
    deleted: bool = False

    def signal(self, number: int) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, number)


@dataclass
class ProcessKube(FakeKube):
    """FakeKube (objects validated against the Kubernetes schema) whose Jobs run. `node_env`
    is what the node adds to every container: the AWS endpoint and credentials (Pod
    Identity's stand-in), the offline hub cache."""

    folder: Path = Path()
    node_env: dict[str, str] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _failures: dict[Key, int] = field(default_factory=dict)

    # --- the KubeApi protocol, one call at a time ---
    def apply(self, manifest: dict[str, Any]) -> None:
        with self._lock:
            key = self._key(manifest)
            new = key not in self.objects
            super().apply(manifest)
            if new and manifest["kind"] == "Job":
                self._start_pod(key)

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return super().read(kind, namespace, name)

    def list_objects(self, kind: str, namespace: str | None, labels: Any = None) -> Any:
        with self._lock:
            return super().list_objects(kind, namespace, labels)

    def annotate(self, kind: str, namespace: str, name: str, annotations: dict[str, str]) -> None:
        with self._lock:
            super().annotate(kind, namespace, name, annotations)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            super().delete(kind, namespace, name)
            stopping = [p for p in self.pods if p.job == (kind, namespace, name) and not p.deleted]
            for pod in stopping:
                pod.deleted = True
        for pod in stopping:
            threading.Thread(target=self._terminate, args=(pod,), daemon=True).start()

    # --- the kubelet and the Job controller ---
    def _start_pod(self, key: Key) -> None:
        job = self.objects[key]
        template = job["spec"]["template"]
        container = template["spec"]["containers"][0]
        attempt = sum(1 for pod in self.pods if pod.job == key)
        name = f"{key[2]}-{attempt}"
        folder = self.folder / name
        mounts = {m["mountPath"]: folder / m["name"] for m in container.get("volumeMounts", [])}
        for path in mounts.values():
            path.mkdir(parents=True, exist_ok=True)
        env = {**IMAGE_ENV, **self.node_env}
        for variable in container.get("env", []):
            env[variable["name"]] = _mounted(variable["value"], mounts)
        command = container.get("command") or image_entrypoint()
        with (folder / "container.log").open("ab") as log:
            process = subprocess.Popen(
                [*command, *container.get("args", [])],
                env=env,
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        pod = Pod(name, key, process, folder)
        self.pods.append(pod)
        self._pod(job, name, {JOB_NAME_LABEL: key[2]}, {"phase": "Running"})
        job["status"] = {"active": 1}
        for reason, message in (
            ("Scheduled", f"Successfully assigned {key[1]}/{name} to a local node"),
            ("Pulled", f"Container image {container['image']} already present on machine"),
            ("Started", f"Started container {container['name']}"),
        ):
            self._pod_event(pod, reason, message)
        threading.Thread(target=self._watch, args=(pod,), daemon=True).start()

    def _pod_event(self, pod: Pod, reason: str, message: str) -> None:
        namespace = pod.job[1]
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{pod.name}.{len(self.objects)}", "namespace": namespace},
            "involvedObject": {"kind": "Pod", "name": pod.name, "namespace": namespace},
            "reason": reason,
            "message": message,
            "type": "Normal",
            "lastTimestamp": _now(),
            "count": 1,
        }
        self.objects[self._key(event)] = event

    def _watch(self, pod: Pod) -> None:
        code = pod.process.wait()
        with self._lock:
            job = self.objects.get(pod.job)
            if pod.deleted or job is None:
                return
            action = _rule_action(job["spec"].get("podFailurePolicy", {}), code, pod.disrupted)
            if code == 0:
                job["status"] = {
                    "succeeded": 1,
                    "conditions": [condition("Complete", "True", "Completed")],
                }
                return
            if action == "FailJob":
                message = f"Container trainer failed with exit code {code} matching a FailJob rule"
                self._fail(job, "PodFailurePolicy", message)
                return
            if action == "Count":
                self._failures[pod.job] = self._failures.get(pod.job, 0) + 1
                if self._failures[pod.job] > job["spec"].get("backoffLimit", 6):
                    self._fail(job, "BackoffLimitExceeded", "Job has reached the backoff limit")
                    return
            self._start_pod(pod.job)

    @staticmethod
    def _fail(job: dict[str, Any], reason: str, message: str) -> None:
        job["status"] = {"failed": 1, "conditions": [condition("Failed", "True", reason, message)]}

    def _terminate(self, pod: Pod) -> None:
        """The kubelet's stop: SIGTERM, the grace period, then SIGKILL."""
        job = self.objects.get(pod.job)
        spec = (job or {}).get("spec", {}).get("template", {}).get("spec", {})
        grace = min(spec.get("terminationGracePeriodSeconds", 30), MAX_GRACE_S)
        pod.signal(signal.SIGTERM)
        try:
            pod.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pod.signal(signal.SIGKILL)
            pod.process.wait()

    # --- what happens to a node, driven by the test ---
    def running(self, job_name: str) -> Pod | None:
        """The live pod of the Job named `job_name`, if any."""
        with self._lock:
            for pod in self.pods:
                if pod.job[2] == job_name and pod.process.poll() is None and not pod.deleted:
                    return pod
        return None

    def lose_node(self, pod: Pod) -> None:
        """The pod's node taken away (a spot reclaim): DisruptionTarget, then the process dies."""
        pod.disrupted = True
        pod.signal(signal.SIGKILL)

    def stop_all(self) -> None:
        """Kill whatever still runs, starting nothing again (the end of a test)."""
        with self._lock:
            for pod in self.pods:
                pod.deleted = True
        for pod in self.pods:
            pod.signal(signal.SIGKILL)
            pod.process.wait()


def _mounted(value: str, mounts: dict[str, Path]) -> str:
    """An env value under a mount path, moved to the pod's folder for that volume."""
    for path, local in mounts.items():
        if value == path or value.startswith(path.rstrip("/") + "/"):
            return str(local) + value[len(path.rstrip("/")) :]
    return value
