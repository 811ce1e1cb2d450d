"""Reconcile model servers with their jobs, so no server holds a GPU nobody uses.

For every server that holds resources (a vLLM Deployment on EKS, a local server process):
- its job's record is gone: the server is removed;
- its record says the deployment is no longer live: the server is stopped;
- it failed or crash-loops: the deployer's status finds it (and deletes its objects), and the
  failure is saved on the job with the reason, without anyone reading the deployment;
- it has been ready and idle past `deployment_idle_ttl_s`: it is scaled to zero (stopped) and
  the deployment recorded deleted, saying why; a deploy starts it again.

Idle means no request answered: each pass reads the server's request counter (its
Prometheus metrics), and a counter that moved since the last pass records the pass's time
as the deployment's `last_request_at`. Idle time counts from then, or from the deploy.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from whetstone.core.job import Deployment, JobRecord
from whetstone.observability import logger
from whetstone.ports import Deployer
from whetstone.service.deployments import refresh_deployment, save_deployment, stop_deployment
from whetstone.service.platform import Platform

Isolate = Callable[[str, str, Callable[[], None]], None]


class LeftOnTheCluster(Protocol):
    def remove_orphan(self, job_id: str) -> None:
        """Remove what a job that has no record left running."""


def record_or_remove(
    platform: Platform, owner: LeftOnTheCluster, job_id: str, what: str, removed: list[str]
) -> JobRecord | None:
    """The job's record; None when it was deleted, after removing what `owner` runs for it
    (`what`, for the log) and listing the job in `removed`."""
    job = platform.jobs.get(job_id)
    if job is None:
        logger.warning("removing what a deleted job left", job_id=job_id, what=what)
        owner.remove_orphan(job_id)
        removed.append(job_id)
    return job


@runtime_checkable
class ServedModels(Deployer, Protocol):
    def served_job_ids(self) -> list[str]:
        """Ids of the jobs whose model server holds resources now."""

    def remove_orphan(self, job_id: str) -> None:
        """Remove the server of a job that has no record."""

    def requests_answered(self, job: JobRecord) -> int | None:
        """The requests the job's server has answered since it started (its metrics); None
        when it cannot tell."""


class ServingRepairs(BaseModel):
    failed: Annotated[
        list[str], Field(description="Failed or crash-looping servers cleaned up.")
    ] = []
    idled: Annotated[list[str], Field(description="Servers idle past the TTL stopped.")] = []
    stopped: Annotated[
        list[str], Field(description="Servers of deleted jobs or ended deployments removed.")
    ] = []


def idle_since(deployment: Deployment) -> datetime:
    """Since when the deployment has answered no request (module docstring)."""
    return deployment.last_request_at or deployment.created_at


def _observe_requests(
    platform: Platform, job: JobRecord, current: Deployment, servers: ServedModels, now: datetime
) -> Deployment:
    """The deployment with the server's request counter, and `now` as its last request when
    the counter moved since the last pass (a restarted server starts it over)."""
    answered = servers.requests_answered(_with(job, current))
    if answered is None or answered == current.requests_answered:
        return current
    moved = answered > 0 and answered != current.requests_answered
    observed = current.model_copy(
        update={
            "requests_answered": answered,
            "last_request_at": now if moved else current.last_request_at,
        }
    )
    save_deployment(platform, job.job_id, observed)
    return observed


def reconcile_deployments(
    platform: Platform, servers: ServedModels, *, now: datetime, isolate: Isolate
) -> ServingRepairs:
    """One pass over every running server; `isolate` runs each server's repair so that one
    that raises does not stop the pass."""
    repairs = ServingRepairs()
    for job_id in servers.served_job_ids():
        isolate(
            job_id,
            "deployment",
            partial(_reconcile_server, platform, servers, job_id, now, repairs),
        )
    return repairs


def _reconcile_server(
    platform: Platform, servers: ServedModels, job_id: str, now: datetime, repairs: ServingRepairs
) -> None:
    job = record_or_remove(platform, servers, job_id, "model server", repairs.stopped)
    if job is None:
        return
    if job.deployment is None or not job.deployment.is_live:
        servers.stop(job)
        repairs.stopped.append(job_id)
        return
    current = refresh_deployment(platform, job, servers)
    if current.status == "failed":
        repairs.failed.append(job_id)
        return
    ttl_s = platform.settings.deployment_idle_ttl_s
    if ttl_s is None or current.status != "ready":
        return
    current = _observe_requests(platform, job, current, servers, now)
    if now - idle_since(current) >= timedelta(seconds=ttl_s):
        message = (
            f"scaled to zero: no request for {ttl_s} s (WHETSTONE_DEPLOYMENT_IDLE_TTL_S); "
            "deploy again to serve it"
        )
        stop_deployment(platform, _with(job, current), servers, message)
        logger.info("idle deployment scaled to zero", job_id=job_id, ttl_s=ttl_s)
        repairs.idled.append(job_id)


def _with(job: JobRecord, deployment: Deployment) -> JobRecord:
    return job.model_copy(update={"deployment": deployment})
