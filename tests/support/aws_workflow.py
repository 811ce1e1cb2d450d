"""The aws runtime of the workflow under moto: table, bucket, log groups, ECR repository,
the step handlers' ports (EKS compute on a fake Kubernetes API), and a job to run."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions import ingest
from support.jobs import RecordingOrchestrator
from support.kube import FakeKube
from support.platform import use_ports
from support.sfn_mock import STATE_MACHINE_NAME
from whetstone import runtime
from whetstone.adapters.aws.codebuild_logs import CodeBuildLogs
from whetstone.adapters.aws.dynamodb_requests import table_definition
from whetstone.adapters.aws.ecr_images import EcrImages
from whetstone.adapters.aws.eks_compute import EksCompute, JobSettings
from whetstone.adapters.aws.eks_deployer import ClusterAccess, EksDeployer, ServingSettings
from whetstone.adapters.aws.sfn_orchestrator import StepFunctionsOrchestrator
from whetstone.core.datasets.prepared import PreparedData, SplitSize
from whetstone.core.events import StatusDetail, TrainerEvent, TrainerPhase, make_event
from whetstone.core.job import Caller, JobRecord
from whetstone.core.layout import JobLayout
from whetstone.core.plan import TrainerPlan
from whetstone.core.spec import JobSpec
from whetstone.service.datasets import prepare_splits
from whetstone.service.jobs import NewJob, create_job
from whetstone.service.platform import Platform

REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "whetstone-jobs"
BUCKET = "whetstone-artifacts"
LOG_GROUP = "/whetstone/jobs"
REPOSITORY = "whetstone-trainer"
REPOSITORY_URI = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}"
BUILD_LOG_GROUP = "/aws/codebuild/whetstone-trainer-image"
TAG = "0123456789abcdef"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STATE_MACHINE_NAME}"
CALLER = Caller(user_id="alice", org_id="acme")
MOTO_CONFIG: Any = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}

ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "WHETSTONE_RUNTIME": "aws",
    "WHETSTONE_TABLE_NAME": TABLE,
    "WHETSTONE_BUCKET": BUCKET,
    "WHETSTONE_LOG_GROUP": LOG_GROUP,
    "WHETSTONE_ECR_REPOSITORY_URI": REPOSITORY_URI,
    "WHETSTONE_STATE_MACHINE_ARN": STATE_MACHINE_ARN,
}


def create_resources() -> None:
    """The table, bucket, log groups and ECR repository the workflow touches."""
    boto3.client("dynamodb").create_table(**table_definition(TABLE))
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_group(logGroupName=BUILD_LOG_GROUP)
    boto3.client("ecr").create_repository(repositoryName=REPOSITORY)


@contextmanager
def aws_workflow(
    monkeypatch: pytest.MonkeyPatch, kube: FakeKube, **ports: Any
) -> Iterator[Platform]:
    """Moto with every resource the workflow touches; the platform and ports built on it.
    The platform's orchestrator records the jobs it is asked to start (a test runs the
    state machine itself where it means to) and its deployer serves on `kube`, unless
    `ports` names others."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    runtime.get_settings.cache_clear()
    with mock_aws(config=MOTO_CONFIG):
        create_resources()
        deployer = EksDeployer(
            lambda: ClusterAccess(api=kube),
            ServingSettings(cluster=JobSettings(region=REGION)),
            expected_golden=lambda job: None,
        )
        platform = use_ports(
            monkeypatch,
            **{"orchestrator": RecordingOrchestrator(), "deployer": deployer, **ports},
        )
        settings = platform.settings
        workflow_ports = runtime.AwsWorkflowPorts(
            compute=EksCompute(
                kube,
                JobSettings(region=REGION, event_bus_name=settings.event_bus_name),
                platform.logs,
            ),
            images=EcrImages(REPOSITORY_URI, project=settings.build_project),
            build_logs=CodeBuildLogs(),
            orchestrator=StepFunctionsOrchestrator(STATE_MACHINE_ARN),
        )
        monkeypatch.setattr(runtime, "get_aws_workflow_ports", lambda: workflow_ports)
        yield platform
    runtime.get_platform.cache_clear()


def waiting_orchestrator(monkeypatch: pytest.MonkeyPatch) -> StepFunctionsOrchestrator:
    """A state machine whose executions wait five minutes (they stay running), as the
    workflow Lambdas' orchestrator."""
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="Whetstone",
        definition=json.dumps(
            {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 300, "End": True}}}
        ),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/whetstone-workflow",
    )["stateMachineArn"]
    orchestrator = StepFunctionsOrchestrator(arn)
    ports = dataclasses.replace(runtime.get_aws_workflow_ports(), orchestrator=orchestrator)
    monkeypatch.setattr(runtime, "get_aws_workflow_ports", lambda: ports)
    return orchestrator


def push_image(tag: str = TAG) -> str:
    """What CodeBuild's push leaves in ECR: an image manifest under the tag."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "digest": "sha256:" + "c" * 64,
            "size": 1,
            "mediaType": "application/vnd.docker.container.image.v1+json",
        },
        "layers": [],
    }
    boto3.client("ecr").put_image(
        repositoryName=REPOSITORY, imageManifest=json.dumps(manifest), imageTag=tag
    )
    return tag


def write_build_log(stream: str, lines: list[str]) -> None:
    logs = boto3.client("logs")
    now_ms = int(time.time() * 1000)
    logs.create_log_stream(logGroupName=BUILD_LOG_GROUP, logStreamName=stream)
    logs.put_log_events(
        logGroupName=BUILD_LOG_GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": now_ms + i, "message": line} for i, line in enumerate(lines)],
    )


DATASET = "\n".join(
    json.dumps(
        {
            "messages": [
                {"role": "user", "content": f"What is {i} plus {i}?"},
                {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."},
            ]
        }
    )
    for i in range(120)
).encode()


def new_job(platform: Platform) -> JobRecord:
    """A job as the API creates it (the orchestrator of `platform` starts its workflow)."""
    spec = JobSpec(base_model="llama-3.2-1b-instruct", method="lora")
    return create_job(platform, CALLER, NewJob(spec=spec), dataset=DATASET, filename="chat.jsonl")


def write_prepared(platform: Platform, job: JobRecord) -> None:
    """What the trainer's prepare stage leaves in S3: the splits and prepared.json."""
    layout = JobLayout.of(job)
    prepared = prepare_splits(
        DATASET,
        job.spec.dataset,
        cutoff_length=job.spec.sequence_length,
        seed=job.spec.advanced.seed,
        blobs=platform.blobs,
        prefix=layout.data,
        settings=platform.settings,
        org_id=job.org_id,
        filename=job.dataset.filename,
    )
    manifest = prepared.manifest
    mean_tokens = manifest.mean_tokens or 0
    result = PreparedData(
        valid=True,
        format=manifest.format,
        splits={
            name: SplitSize(examples=count, tokens=round(count * mean_tokens))
            for name, count in manifest.counts.items()
        },
        sha256=manifest.sha256,
        report=prepared.report,
    )
    platform.blobs.put(layout.prepared, result.model_dump_json().encode())


def write_model(platform: Platform, job: JobRecord) -> None:
    """What the trainer leaves in S3 when it succeeds."""
    model = JobLayout.of(job).model
    platform.blobs.put(model + "adapter_config.json", b'{"r": 16}')
    platform.blobs.put(model + "adapter_model.safetensors", b"\0" * 64)


def eventbridge_event(event: TrainerEvent) -> dict[str, Any]:
    """A trainer event as EventBridge hands it to the ingest Lambda."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": event.detail_type.value,
        "source": event.source,
        "account": ACCOUNT,
        "time": event.time.isoformat(),
        "region": REGION,
        "resources": [],
        "detail": event.model_dump(mode="json"),
    }


def plan_credential(job_id: str) -> str | None:
    """The event credential of the job's plan, as the trainer reads it (None: no plan)."""
    platform = runtime.get_platform()
    job = platform.jobs.get(job_id)
    key = JobLayout.of(job).plan if job is not None else None
    if key is None or not platform.blobs.exists(key):
        return None
    with platform.blobs.open(key) as stream:
        return TrainerPlan.model_validate_json(stream.read()).events.credential


def trainer_says(job_id: str, phase: TrainerPhase, **detail: Any) -> None:
    """A trainer status event, signed with its plan's credential, through EventBridge and
    the ingest Lambda."""
    event = make_event(
        job_id, StatusDetail(phase=phase, **detail), credential=plan_credential(job_id)
    )
    ingest.handler(eventbridge_event(event))
