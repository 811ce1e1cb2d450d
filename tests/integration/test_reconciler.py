"""The reconciler of the aws runtime under moto and a fake Kubernetes API: per-job isolation,
trainer Jobs of deleted jobs, restarts under new names, and the model servers it repairs."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from support.aws_workflow import new_job, waiting_orchestrator
from support.jobs import make_job
from support.kube import FakeKube, container_status

from functions import reconciler
from whetstone import runtime
from whetstone.adapters.aws.kube.serving_manifests import FETCH_CONTAINER, SERVER_CONTAINER
from whetstone.adapters.aws.sfn_orchestrator import StepFunctionsOrchestrator
from whetstone.core.job import JobRecord, utcnow
from whetstone.core.lifecycle import JobStatus
from whetstone.service.platform import Platform
from whetstone.service.reconcile import reconcile
from whetstone.service.records import update_job

PLAN = "s3://whetstone-artifacts/plan.json"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/whetstone-trainer@sha256:" + "b" * 64


@pytest.fixture
def orchestrator(
    aws_platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> StepFunctionsOrchestrator:
    return waiting_orchestrator(monkeypatch)


class FailingFor:
    """The workflow runs, except that restarting one job raises (say, a throttled call)."""

    def __init__(self, runs: StepFunctionsOrchestrator, broken: str) -> None:
        self._runs = runs
        self._broken = broken

    def running(self) -> dict[str, str]:
        return self._runs.running()

    def restart(self, job: JobRecord) -> None:
        if job.job_id == self._broken:
            raise RuntimeError("ThrottlingException: Rate exceeded")
        self._runs.restart(job)

    def abort(self, execution: str, reason: str) -> None:
        self._runs.abort(execution, reason)


def lost_pending_job(platform: Platform) -> JobRecord:
    job = new_job(platform)
    return update_job(
        platform,
        job.job_id,
        lambda j: j.model_copy(update={"updated_at": utcnow() - timedelta(hours=1)}),
    )


def test_given_one_broken_job_among_healthy_ones_when_reconciled_then_the_others_are_repaired(
    aws_platform: Platform, orchestrator: StepFunctionsOrchestrator
) -> None:
    healthy = [lost_pending_job(aws_platform) for _ in range(2)]
    broken = lost_pending_job(aws_platform)
    runs = FailingFor(orchestrator, broken.job_id)

    repairs = reconcile(aws_platform, runs, runtime.get_aws_workflow_ports().compute)

    assert repairs.errors == [broken.job_id]
    assert sorted(repairs.restarted) == sorted(job.job_id for job in healthy)
    assert sorted(orchestrator.running()) == sorted(job.job_id for job in healthy)


def test_given_a_job_restarted_twice_then_each_restart_is_a_new_execution(
    aws_platform: Platform, orchestrator: StepFunctionsOrchestrator
) -> None:
    job = new_job(aws_platform)

    orchestrator.restart(job)
    orchestrator.restart(job)

    executions = boto3.client("stepfunctions").list_executions(
        stateMachineArn=orchestrator.state_machine_arn
    )["executions"]
    names = [execution["name"] for execution in executions]
    assert len(set(names)) == 2
    assert all(name.startswith(job.job_id + "-r") for name in names)
    assert list(orchestrator.running()) == [job.job_id]


def test_given_paused_and_long_pausing_jobs_without_executions_then_one_waits_one_is_paused(
    aws_platform: Platform, orchestrator: StepFunctionsOrchestrator
) -> None:
    # Given a paused job and one left pausing an hour ago, neither with an execution
    def in_status(status: JobStatus) -> JobRecord:
        job = new_job(aws_platform)
        return update_job(
            aws_platform,
            job.job_id,
            lambda j: j.model_copy(
                update={"status": status, "updated_at": utcnow() - timedelta(hours=1)}
            ),
        )

    paused, pausing = in_status(JobStatus.PAUSED), in_status(JobStatus.PAUSING)

    # When reconciled
    repairs = reconcile(aws_platform, orchestrator, runtime.get_aws_workflow_ports().compute)

    # Then the paused job is left as it is (not failed as workflow_lost), the other paused
    assert repairs.failed == [] and repairs.paused == [pausing.job_id]
    for job in (paused, pausing):
        stored = aws_platform.jobs.get(job.job_id)
        assert stored is not None and stored.status is JobStatus.PAUSED


def test_given_a_trainer_job_whose_record_was_deleted_when_reconciled_then_it_is_removed(
    aws_platform: Platform, kube: FakeKube, orchestrator: StepFunctionsOrchestrator
) -> None:
    job = new_job(aws_platform)
    runtime.get_aws_workflow_ports().compute.launch(job, PLAN, IMAGE)
    aws_platform.jobs.delete(job.job_id)

    repairs = reconciler.handler({})

    assert repairs["orphans"] == [job.job_id]
    assert {"Job", "ServiceAccount"}.isdisjoint(kube.kinds())


# --- model servers ----------------------------------------------------------------------------


def deployed(platform: Platform, *, ready: bool, age: timedelta = timedelta(0)) -> JobRecord:
    """A completed job whose model was deployed `age` ago (ready or still starting)."""
    job = make_job("acme", status=JobStatus.COMPLETED)
    platform.jobs.create(job)
    assert platform.deployer is not None
    started = platform.deployer.start(job, PLAN, base_model=None, max_lora_rank=16)
    recorded = started.model_copy(
        update={"status": "ready" if ready else "starting", "created_at": utcnow() - age}
    )
    return update_job(platform, job.job_id, lambda j: j.model_copy(update={"deployment": recorded}))


@pytest.fixture
def hour_ttl(
    aws_platform: Platform,
    orchestrator: StepFunctionsOrchestrator,
    monkeypatch: pytest.MonkeyPatch,
) -> Platform:
    """The aws platform with servers scaled to zero after an hour without requests."""
    monkeypatch.setenv("WHETSTONE_DEPLOYMENT_IDLE_TTL_S", "3600")
    runtime.get_settings.cache_clear()
    runtime.get_platform.cache_clear()
    return runtime.get_platform()


def answering_server(platform: Platform, kube: FakeKube, age: timedelta) -> JobRecord:
    """A ready server deployed `age` ago whose pod answers."""
    job = deployed(platform, ready=True, age=age)
    fetched = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    kube.serving_pod(
        job.job_id,
        {
            "phase": "Running",
            "initContainerStatuses": [container_status(FETCH_CONTAINER, state=fetched)],
            "containerStatuses": [container_status(SERVER_CONTAINER, ready=True)],
        },
    )
    kube.set_deployment_status(job.job_id, {"replicas": 1, "availableReplicas": 1})
    return job


def deployment_of(platform: Platform, job: JobRecord) -> tuple[str, str]:
    stored = platform.jobs.get(job.job_id)
    assert stored is not None and stored.deployment is not None
    return stored.deployment.status, stored.deployment.message or ""


def test_given_a_crash_looping_server_when_reconciled_then_it_is_cleaned_up_and_marked_failed(
    aws_platform: Platform, kube: FakeKube, orchestrator: StepFunctionsOrchestrator
) -> None:
    job = deployed(aws_platform, ready=False)
    crashed = container_status(
        SERVER_CONTAINER,
        state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m"}},
        last_terminated={"exitCode": 1, "message": "torch.OutOfMemoryError"},
        restarts=4,
    )
    kube.serving_pod(job.job_id, {"phase": "Running", "containerStatuses": [crashed]})

    repairs = reconciler.handler({})

    status, message = deployment_of(aws_platform, job)
    assert repairs["serving"]["failed"] == [job.job_id]
    assert status == "failed" and "CrashLoopBackOff" in message and "OutOfMemory" in message
    assert {"Deployment", "Service"}.isdisjoint(kube.kinds())


def test_given_a_server_that_keeps_restarting_when_reconciled_then_it_is_marked_failed(
    aws_platform: Platform, kube: FakeKube, orchestrator: StepFunctionsOrchestrator
) -> None:
    job = deployed(aws_platform, ready=True)
    restarting = container_status(
        SERVER_CONTAINER, last_terminated={"exitCode": 137, "reason": "OOMKilled"}, restarts=5
    )
    kube.serving_pod(job.job_id, {"phase": "Running", "containerStatuses": [restarting]})

    reconciler.handler({})

    status, message = deployment_of(aws_platform, job)
    assert status == "failed" and "restarted 5 times" in message and "OOMKilled" in message
    assert "Deployment" not in kube.kinds()


def test_given_a_server_idle_past_the_ttl_when_reconciled_then_it_is_scaled_to_zero(
    hour_ttl: Platform, kube: FakeKube
) -> None:
    platform = hour_ttl
    idle = answering_server(platform, kube, timedelta(hours=2))
    fresh = answering_server(platform, kube, timedelta(minutes=5))

    repairs = reconciler.handler({})

    assert repairs["serving"]["idled"] == [idle.job_id]
    status, message = deployment_of(platform, idle)
    assert status == "deleted" and "scaled to zero" in message and "3600 s" in message
    assert deployment_of(platform, fresh)[0] == "ready"
    assert [kube.deployment(fresh.job_id)["metadata"]["name"]] == [
        name for kind, _, name in kube.objects if kind == "Deployment"
    ]


def _counter(answered: int) -> str:
    """vLLM's /metrics with its request counter at `answered`."""
    return (
        "# TYPE vllm:request_success_total counter\n"
        f'vllm:request_success_total{{finished_reason="stop"}} {answered}.0\n'
    )


def test_given_an_old_server_still_answering_when_reconciled_then_it_serves_until_idle(
    hour_ttl: Platform, kube: FakeKube
) -> None:
    # Given a server deployed two hours ago (past a 1 h TTL) that has answered requests
    platform = hour_ttl
    busy = answering_server(platform, kube, timedelta(hours=2))
    service = kube.deployment(busy.job_id)["metadata"]["name"]
    kube.served_metrics[service] = _counter(5)

    # When the reconciler passes, then the moved counter counts as a request: it keeps serving
    assert reconciler.handler({})["serving"]["idled"] == []
    record = platform.jobs.get(busy.job_id)
    assert record is not None and record.deployment is not None
    assert record.deployment.requests_answered == 5 and record.deployment.last_request_at

    # When its last request was over an hour ago and the counter has not moved since
    def an_hour_later(job: JobRecord) -> JobRecord:
        assert job.deployment is not None and job.deployment.last_request_at is not None
        earlier = job.deployment.last_request_at - timedelta(hours=1, minutes=1)
        return job.model_copy(
            update={"deployment": job.deployment.model_copy(update={"last_request_at": earlier})}
        )

    update_job(platform, busy.job_id, an_hour_later)

    # Then it is idle, and scaled to zero
    assert reconciler.handler({})["serving"]["idled"] == [busy.job_id]


def test_given_no_idle_ttl_when_an_old_server_is_reconciled_then_it_keeps_serving(
    aws_platform: Platform, kube: FakeKube, orchestrator: StepFunctionsOrchestrator
) -> None:
    job = answering_server(aws_platform, kube, timedelta(days=30))

    reconciler.handler({})

    assert deployment_of(aws_platform, job)[0] == "ready"
    assert "Deployment" in kube.kinds()


def test_given_a_server_whose_job_was_deleted_when_reconciled_then_it_is_removed(
    aws_platform: Platform, kube: FakeKube, orchestrator: StepFunctionsOrchestrator
) -> None:
    job = deployed(aws_platform, ready=True)
    aws_platform.jobs.delete(job.job_id)

    repairs = reconciler.handler({})

    assert repairs["serving"]["stopped"] == [job.job_id]
    assert {"Deployment", "Service", "ServiceAccount"}.isdisjoint(kube.kinds())
