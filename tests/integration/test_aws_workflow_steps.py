"""The aws workflow's handlers and adapters against moto and a fake Kubernetes API."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import boto3
import pytest
from support.aws_workflow import (
    CALLER,
    DATASET,
    eventbridge_event,
    new_job,
    waiting_orchestrator,
)
from support.kube import FakeKube

from functions import ingest, reconciler, s3_trigger
from whetstone import runtime
from whetstone.adapters.aws.kube.shared_manifests import namespace_name
from whetstone.adapters.aws.sfn_orchestrator import StepFunctionsOrchestrator
from whetstone.core.events import MetricsDetail, make_event
from whetstone.core.job import Deployment, JobRecord, utcnow
from whetstone.core.lifecycle import JobStatus
from whetstone.core.logs import LogQuery
from whetstone.core.plan import EventSinkSettings
from whetstone.ports import ComputeState
from whetstone.service import workflow
from whetstone.service.event_credentials import issue_event_credential
from whetstone.service.platform import Platform
from whetstone.service.records import update_job

PLAN = "s3://whetstone-artifacts/plan.json"
WAIT_A_WHILE = {"Type": "Wait", "Seconds": 300, "End": True}  # an execution that stays running
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/whetstone-trainer@sha256:" + "b" * 64


@pytest.fixture
def platform(aws_platform: Platform) -> Platform:
    return aws_platform


@pytest.fixture
def job(platform: Platform) -> JobRecord:
    return new_job(platform)


def with_status(platform: Platform, job: JobRecord, status: JobStatus, age_s: int) -> JobRecord:
    def change(current: JobRecord) -> JobRecord:
        moved = current.with_status(status)
        return moved.model_copy(update={"updated_at": utcnow() - timedelta(seconds=age_s)})

    return update_job(platform, job.job_id, change)


def deployed_an_hour_ago(platform: Platform, job: JobRecord) -> None:
    """The job's trainer started an hour ago: it has compute hours and cost to account."""
    with_status(platform, job, JobStatus.PREPARING, 0)
    update_job(
        platform,
        job.job_id,
        lambda j: j.with_status(JobStatus.DEPLOYING).model_copy(
            update={"training_started_at": utcnow() - timedelta(hours=1)}
        ),
    )


def deployment_log(platform: Platform, job_id: str) -> list[str]:
    entries, _ = platform.logs.query(job_id, LogQuery(source="deployment", limit=100))
    return [entry.message for entry in entries]


def test_given_a_job_when_launched_twice_then_its_objects_exist_once(
    job: JobRecord, kube: FakeKube
) -> None:
    compute = runtime.get_aws_workflow_ports().compute

    compute.launch(job, PLAN, IMAGE)
    compute.launch(job, PLAN, IMAGE)

    assert sorted(kube.kinds()) == [
        "Job",
        "Namespace",
        "NetworkPolicy",
        "NetworkPolicy",
        "ResourceQuota",
        "ServiceAccount",
    ]


def test_given_a_launched_job_when_polled_then_state_and_pod_events_follow_the_cluster(
    platform: Platform, job: JobRecord, kube: FakeKube
) -> None:
    compute = runtime.get_aws_workflow_ports().compute
    compute.launch(job, PLAN, IMAGE)
    assert compute.status(job).state is ComputeState.PENDING
    kube.start_pod(job.job_id)
    kube.add_event(job.job_id, "Nominated", "karpenter launched a g4dn", utcnow().isoformat())

    first = compute.status(job)
    second = compute.status(job)
    kube.finish_job(job.job_id, succeeded=True)

    assert first.state is second.state is ComputeState.RUNNING
    assert deployment_log(platform, job.job_id) == ["karpenter launched a g4dn"]
    assert compute.status(job).state is ComputeState.SUCCEEDED


def test_given_a_running_job_when_stopped_then_its_job_and_service_account_go(
    job: JobRecord, kube: FakeKube
) -> None:
    compute = runtime.get_aws_workflow_ports().compute
    compute.launch(job, PLAN, IMAGE)

    compute.stop(job)
    compute.stop(job)

    namespace = namespace_name(job.org_id, "whetstone-")
    assert kube.deleted == [
        ("Job", namespace, job.job_id),
        ("ServiceAccount", namespace, job.job_id),
    ]
    assert compute.status(job).state is ComputeState.MISSING


def test_given_a_metrics_event_when_ingested_then_the_job_has_metrics_and_live_cost(
    platform: Platform, job: JobRecord
) -> None:
    deployed_an_hour_ago(platform, job)
    detail = MetricsDetail(step=10, max_steps=100, epoch=0.3, progress=0.1, loss=1.25)

    ingest.handler(eventbridge_event(make_event(job.job_id, detail)))

    stored = platform.jobs.get(job.job_id)
    assert stored is not None and stored.latest_metrics["loss"] == 1.25
    assert stored.cost.current_usd > 0 and stored.progress.step == 10
    points = platform.jobs.query_metrics(job.job_id, names=["loss"], min_step=None, max_step=None)
    assert [p.value for p in points] == [1.25]


def test_given_two_jobs_when_one_signs_an_event_for_the_other_then_it_is_dropped(
    platform: Platform, job: JobRecord
) -> None:
    other = new_job(platform)
    sinks = EventSinkSettings(kind="eventbridge", bus_name="whetstone")
    own = issue_event_credential(platform, job.job_id, sinks).credential
    theirs = issue_event_credential(platform, other.job_id, sinks).credential
    for each in (job, other):
        deployed_an_hour_ago(platform, each)
    detail = MetricsDetail(step=10, max_steps=100, epoch=0.3, progress=0.1, loss=1.25)

    ingest.handler(eventbridge_event(make_event(other.job_id, detail, credential=own)))
    ingest.handler(eventbridge_event(make_event(other.job_id, detail)))
    ingest.handler(eventbridge_event(make_event(job.job_id, detail, credential=own)))

    forged = platform.jobs.get(other.job_id)
    assert forged is not None and forged.progress.step == 0 and not forged.latest_metrics
    signed = platform.jobs.get(job.job_id)
    assert signed is not None and signed.progress.step == 10
    assert own is not None and theirs is not None and own != theirs
    assert signed.event_credential_sha256 != own  # the record keeps only its hash


def test_given_a_job_that_trained_an_hour_when_it_fails_then_its_cost_is_final_and_logged(
    platform: Platform, job: JobRecord
) -> None:
    deployed_an_hour_ago(platform, job)
    compute = runtime.get_aws_workflow_ports().compute

    workflow.fail(platform, job.job_id, compute, "trainer_crashed", "exit 1", "Poll")
    workflow.fail(platform, job.job_id, compute, "trainer_crashed", "exit 1", "Poll")

    failed = platform.jobs.get(job.job_id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.cost.compute_hours == pytest.approx(1.0, abs=0.01)
    assert failed.cost.current_usd == pytest.approx(failed.cost.hourly_rate_usd, rel=0.01)
    entries, _ = platform.logs.query(job.job_id, LogQuery(source="deployment", limit=100))
    (ended,) = [e for e in entries if e.message == workflow.JOB_ENDED_LINE]  # logged once
    assert ended.fields == {
        "status": "failed",
        "gpu_hours": failed.cost.compute_hours,
        "cost_usd": failed.cost.current_usd,
    }


def s3_event(key: str, etag: str = "abc") -> dict[str, object]:
    return {"Records": [{"s3": {"object": {"key": key.replace(" ", "+"), "eTag": etag}}}]}


def test_given_a_dataset_and_its_config_when_dropped_then_one_job_is_created(
    platform: Platform,
) -> None:
    spec = {"spec": {"base_model": "llama-3.2-1b-instruct", "method": "lora"}, "name": "drop"}
    platform.blobs.put("incoming/acme/my data.jsonl", DATASET)
    first = s3_trigger.handler(s3_event("incoming/acme/my data.jsonl"))
    platform.blobs.put("incoming/acme/my data.job.json", json.dumps(spec).encode())

    second = s3_trigger.handler(s3_event("incoming/acme/my data.job.json"))
    again = s3_trigger.handler(s3_event("incoming/acme/my data.jsonl"))

    assert first == {"created": []}
    assert second["created"] == again["created"] and len(second["created"]) == 1
    job = platform.jobs.get(second["created"][0])
    assert job is not None and job.org_id == "acme" and job.name == "drop"
    accepted = json.loads(platform.blobs.open("incoming/acme/my data.accepted.json").read())
    assert accepted == {"job_id": job.job_id}


def test_given_a_dataset_and_its_config_uploaded_together_when_both_events_arrive_then_one_job(
    platform: Platform,
) -> None:
    spec = {"spec": {"base_model": "llama-3.2-1b-instruct", "method": "lora"}}
    platform.blobs.put("incoming/acme/pair.jsonl", DATASET)
    platform.blobs.put("incoming/acme/pair.job.json", json.dumps(spec).encode())

    by_config = s3_trigger.handler(s3_event("incoming/acme/pair.job.json", etag="config-etag"))
    by_dataset = s3_trigger.handler(s3_event("incoming/acme/pair.jsonl", etag="dataset-etag"))

    assert by_config["created"] == by_dataset["created"] and len(by_config["created"]) == 1


def test_given_a_bad_dataset_when_dropped_then_an_error_report_lies_beside_it(
    platform: Platform,
) -> None:
    spec = {"spec": {"base_model": "llama-3.2-1b-instruct", "method": "lora"}}
    platform.blobs.put("incoming/acme/bad.jsonl", b'{"nonsense": 1}\n')
    platform.blobs.put("incoming/acme/bad.job.json", json.dumps(spec).encode())

    result = s3_trigger.handler(s3_event("incoming/acme/bad.job.json"))

    report = json.loads(platform.blobs.open("incoming/acme/bad.error.json").read())
    assert result == {"created": []}
    assert report["code"] == "dataset_invalid" and report["message"]


def test_given_a_bad_config_when_dropped_then_the_error_report_names_the_field(
    platform: Platform,
) -> None:
    platform.blobs.put("incoming/acme/c.jsonl", DATASET)
    platform.blobs.put("incoming/acme/c.job.json", b'{"spec": {"method": "lora"}}')

    s3_trigger.handler(s3_event("incoming/acme/c.job.json"))

    report = json.loads(platform.blobs.open("incoming/acme/c.error.json").read())
    assert report["code"] == "invalid_config"
    assert any("base_model" in e["loc"] for e in report["details"])


@pytest.fixture
def orchestrator(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> StepFunctionsOrchestrator:
    return waiting_orchestrator(monkeypatch)


def test_given_a_job_when_started_twice_then_one_execution_runs(
    job: JobRecord, orchestrator: StepFunctionsOrchestrator
) -> None:
    orchestrator.start(job)
    orchestrator.start(job)

    assert list(orchestrator.running()) == [job.job_id]


def test_given_a_training_job_without_workflow_when_reconciled_then_it_fails_and_is_cleaned(
    platform: Platform, job: JobRecord, kube: FakeKube, orchestrator: StepFunctionsOrchestrator
) -> None:
    runtime.get_aws_workflow_ports().compute.launch(job, PLAN, IMAGE)
    for status in (JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING):
        with_status(platform, job, status, age_s=3600)

    repairs = reconciler.handler({})

    stored = platform.jobs.get(job.job_id)
    assert repairs["failed"] == [job.job_id]
    assert stored is not None and stored.status is JobStatus.FAILED
    assert stored.error is not None and stored.error.code == "workflow_lost"
    assert "Job" not in kube.kinds()


def test_given_a_lost_pending_job_when_reconciled_then_its_workflow_starts(
    platform: Platform, job: JobRecord, orchestrator: StepFunctionsOrchestrator
) -> None:
    update_job(
        platform,
        job.job_id,
        lambda j: j.model_copy(update={"updated_at": utcnow() - timedelta(hours=1)}),
    )

    repairs = reconciler.handler({})

    assert repairs["restarted"] == [job.job_id]
    assert list(orchestrator.running()) == [job.job_id]


def test_given_a_deployed_job_whose_trainer_job_lingers_when_reconciled_then_its_account_stays(
    platform: Platform, job: JobRecord, kube: FakeKube, orchestrator: StepFunctionsOrchestrator
) -> None:
    runtime.get_aws_workflow_ports().compute.launch(job, PLAN, IMAGE)
    now = utcnow()
    serving = Deployment(
        status="ready", model=job.job_id, max_lora_rank=16, created_at=now, updated_at=now
    )
    update_job(
        platform,
        job.job_id,
        lambda j: j.with_status(JobStatus.COMPLETED).model_copy(update={"deployment": serving}),
    )

    repairs = reconciler.handler({})

    assert repairs["deleted"] == []
    assert "ServiceAccount" in kube.kinds()  # the vLLM pod's identity


def test_given_an_ended_job_with_a_running_execution_when_reconciled_then_it_is_aborted(
    platform: Platform, job: JobRecord, kube: FakeKube, orchestrator: StepFunctionsOrchestrator
) -> None:
    orchestrator.start(job)
    runtime.get_aws_workflow_ports().compute.launch(job, PLAN, IMAGE)
    with_status(platform, job, JobStatus.CANCELLED, age_s=0)

    repairs = reconciler.handler({})

    assert repairs["aborted"] == [job.job_id] and repairs["deleted"] == [job.job_id]
    assert "Job" not in kube.kinds()
    # moto's interpreter applies a StopExecution asynchronously, in the execution's thread.
    sfn = boto3.client("stepfunctions")
    execution = f"{orchestrator.state_machine_arn.replace(':stateMachine:', ':execution:')}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = sfn.describe_execution(executionArn=f"{execution}:{job.job_id}")["status"]
        if status != "RUNNING":
            break
        time.sleep(0.05)
    assert status == "ABORTED"
    assert CALLER.org_id == job.org_id
