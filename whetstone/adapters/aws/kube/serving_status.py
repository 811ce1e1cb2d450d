"""Where a vLLM server is, read from its Deployment's conditions and its pod's container
states (image pulls, crash loops, a GPU node that never comes). Pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from whetstone.adapters.aws.kube.object_status import clip, condition, parse_timestamp
from whetstone.adapters.aws.kube.serving_manifests import FETCH_CONTAINER, ServingSettings

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


@dataclass(frozen=True)
class ServerState:
    """Where a server is: starting, available (answering /health) or failed, and why."""

    state: str  # "starting", "available", "failed"
    message: str


def _last_exit(container: Mapping[str, Any]) -> str:
    last = (container.get("lastState") or {}).get("terminated") or {}
    if not last:
        return ""
    return (
        f"exit code {last.get('exitCode')}"
        + (f" ({last['reason']})" if last.get("reason") else "")
        + (f": {last['message']}" if last.get("message") else "")
    )


def _container_failure(pod: Mapping[str, Any]) -> str | None:
    status = pod.get("status") or {}
    if status.get("phase") == "Failed":
        return clip(
            f"the server's pod failed: {status.get('reason') or ''} "
            f"{status.get('message') or ''}".strip()
        )
    statuses = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    for container in statuses:
        name = container.get("name", "")
        what = "fetching the model from S3" if name == FETCH_CONTAINER else f"container {name}"
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        restarts = int(container.get("restartCount") or 0)
        if reason not in _FAILED_WAITING:
            if restarts >= CRASH_LOOP_RESTARTS and not container.get("ready"):
                # Between two back-offs a crash-looping container reads running, not ready.
                message = f"{what}: restarted {restarts} times without becoming ready"
                detail = _last_exit(container)
                return clip(f"{message}; {detail}" if detail else message)
            continue
        if reason == "CrashLoopBackOff" and restarts < CRASH_LOOP_RESTARTS:
            continue
        detail = _last_exit(container) or str(waiting.get("message") or "")
        return clip(f"{what}: {reason}, {_FAILED_WAITING[reason]}; {detail}".rstrip("; "))
    return None


def _age_s(timestamp: object, now: datetime) -> float:
    at = parse_timestamp(timestamp)
    return (now - at).total_seconds() if at is not None else 0.0


def _waiting_message(pods: Sequence[Mapping[str, Any]]) -> str:
    if not pods:
        return "creating the server's pod"
    status = pods[0].get("status") or {}
    if condition(pods[0], "PodScheduled", "False") is not None:
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
    stalled = condition(deployment, "Progressing", "False")
    if stalled is not None and stalled.get("reason") == "ProgressDeadlineExceeded":
        cause = next((m for m in map(_container_failure, pods) if m), _waiting_message(pods))
        return ServerState(
            "failed",
            clip(f"the server was not ready within {settings.ready_timeout_s} s ({cause})"),
        )
    refused = condition(deployment, "ReplicaFailure", "True")
    if refused is not None:
        return ServerState(
            "failed",
            clip(f"the server's pod could not be created: {refused.get('message') or ''}"),
        )
    for pod in pods:
        failure = _container_failure(pod)
        if failure is not None:
            return ServerState("failed", failure)
        unscheduled = condition(pod, "PodScheduled", "False")
        if unscheduled is not None and unscheduled.get("reason") == "Unschedulable":
            waited = _age_s(unscheduled.get("lastTransitionTime"), now)
            if waited > settings.unschedulable_grace_s:
                return ServerState(
                    "failed",
                    clip(
                        f"no GPU node could take the server within {int(waited)} s "
                        f"({unscheduled.get('message') or 'Unschedulable'}); check the GPU "
                        "quota and the Karpenter NodePool's limits"
                    ),
                )
    if int((deployment.get("status") or {}).get("availableReplicas") or 0) >= 1:
        return ServerState("available", "the server answers")
    return ServerState("starting", _waiting_message(pods))
