"""Every Lambda entry point's log lines carry its Lambda context, a correlation id from its
event and, where one job is in scope, the job: what Logs Insights follows a job by."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from support.aws_workflow import ACCOUNT, CALLER, DATASET, eventbridge_event, new_job
from support.sfn_mock import STATE_MACHINE_NAME

from functions import ingest, reconciler, s3_trigger, workflow
from whetstone.api.app import API_PREFIX
from whetstone.api.app import handler as api_handler
from whetstone.api.identity import claims_for
from whetstone.cli.server import build_proxy_event
from whetstone.core.events import StatusDetail, TrainerPhase, make_event
from whetstone.observability import logger
from whetstone.service.platform import Platform

LogLines = Callable[[], list[dict[str, Any]]]


@dataclass
class FakeLambdaContext:
    function_name: str = "WhetstoneTest"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:WhetstoneTest"
    aws_request_id: str = "a-request-id"


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> LogLines:
    stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", stream)
    return lambda: [json.loads(line) for line in stream.getvalue().splitlines()]


def the_line(lines: list[dict[str, Any]], message: str) -> dict[str, Any]:
    (line,) = (line for line in lines if line["message"] == message)
    return line


def test_an_api_request_naming_a_job_logs_its_request_id_caller_org_and_job(
    aws_platform: Platform, log_lines: LogLines
) -> None:
    job_id = "ftjob-00000000000000000000"
    claims = claims_for(CALLER)
    event = build_proxy_event("GET", f"{API_PREFIX}/jobs/{job_id}", {}, b"", "127.0.0.1", claims)

    response = api_handler(event, FakeLambdaContext())

    line = the_line(log_lines(), "request refused")
    assert response["statusCode"] == 404
    assert line["function_request_id"] == "a-request-id"
    assert line["correlation_id"] == event["requestContext"]["requestId"]
    assert line["job_id"] == job_id and line["org_id"] == CALLER.org_id


def test_a_trainer_event_logs_the_eventbridge_id_and_its_job(
    aws_platform: Platform, log_lines: LogLines
) -> None:
    job = new_job(aws_platform)
    event = eventbridge_event(make_event(job.job_id, StatusDetail(phase=TrainerPhase.LOADING)))

    ingest.handler(event, FakeLambdaContext())

    line = the_line(log_lines(), "trainer event")
    assert line["function_request_id"] == "a-request-id"
    assert line["correlation_id"] == event["id"]
    assert line["job_id"] == job.job_id


def test_a_workflow_step_logs_its_job_as_the_correlation_id(
    aws_platform: Platform, log_lines: LogLines
) -> None:
    job = new_job(aws_platform)

    workflow.begin({"job_id": job.job_id}, FakeLambdaContext())

    line = the_line(log_lines(), "workflow step")
    assert line["function_request_id"] == "a-request-id"
    assert line["correlation_id"] == line["job_id"] == job.job_id


def test_an_s3_drop_logs_the_s3_request_id_and_the_job_it_created(
    aws_platform: Platform, log_lines: LogLines
) -> None:
    spec = {"spec": {"base_model": "llama-3.2-1b-instruct", "method": "lora"}}
    aws_platform.blobs.put("incoming/acme/d.jsonl", DATASET)
    aws_platform.blobs.put("incoming/acme/d.job.json", json.dumps(spec).encode())
    record = {
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810"},
        "s3": {"object": {"key": "incoming/acme/d.job.json", "eTag": "abc"}},
    }

    created = s3_trigger.handler({"Records": [record]}, FakeLambdaContext())

    line = the_line(log_lines(), "job created from a drop")
    assert line["function_request_id"] == "a-request-id"
    assert line["correlation_id"] == "C3D13FE58DE4C810"
    assert [line["job_id"]] == created["created"] and line["org_id"] == "acme"


def test_the_next_invocation_carries_no_job_of_the_previous_one(
    aws_platform: Platform, log_lines: LogLines
) -> None:
    boto3.client("stepfunctions").create_state_machine(
        name=STATE_MACHINE_NAME,
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/whetstone-workflow",
    )
    job = new_job(aws_platform)
    workflow.begin({"job_id": job.job_id}, FakeLambdaContext())

    reconciler.handler({"id": "a-schedule-event-id"}, FakeLambdaContext(aws_request_id="next"))

    line = the_line(log_lines(), "reconciled")
    assert line["function_request_id"] == "next"
    assert line["correlation_id"] == "a-schedule-event-id"
    assert "job_id" not in line
