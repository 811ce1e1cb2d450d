"""moto in server mode: the AWS APIs at an endpoint URL this process and the trainer
subprocesses share, with the resources the deployed stacks create."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
import pytest
from moto.core.config import default_user_config

from support.aws_workflow import ACCOUNT, BUCKET, ENVIRONMENT, create_resources, push_image
from support.sfn_mock import STATE_MACHINE_NAME
from support.workflow_functions import substitutions
from whetstone.adapters.aws.sfn_orchestrator import render_definition
from whetstone.core.events import EVENT_SOURCE
from whetstone.core.layout import INCOMING_ROOT

# The bus and rule of infra/constructs/trainer_events.py (infra.constants names them; that
# module imports aws_cdk, too heavy for a test's import).
EVENT_BUS_NAME = "whetstone"
INGEST_RULE = "whetstone-trainer-events"
# The rule's stand-in target: moto delivers matching events to an SQS queue (it cannot
# invoke a Lambda without Docker); support.aws_e2e.event_delivery hands them to ingest.
INGEST_QUEUE = "whetstone-ingest"
# The bucket notification's stand-in target for the S3-trigger Lambda, likewise.
DROP_QUEUE = "whetstone-s3-drop"


@contextmanager
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server on a free local port, executing state machines; this process's AWS
    clients point at it (AWS_ENDPOINT_URL). Yields the endpoint URL."""
    # Imported here: it needs flask (the dev extra), and a missing one should fail these
    # tests, not the collection of every test.
    from moto.server import ThreadedMotoServer

    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # Backends live in this process, across servers: start from none.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    for name, value in {**ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WHETSTONE_EVENT_BUS_NAME", EVENT_BUS_NAME)
    try:
        yield endpoint
    finally:
        server.stop()


@dataclass(frozen=True)
class Queues:
    """Where moto delivers what the stacks send to a Lambda."""

    ingest: str
    drop: str


def _queue(name: str) -> tuple[str, str]:
    """A new queue's URL and ARN."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, attributes["Attributes"]["QueueArn"]


def deploy_stacks() -> Queues:
    """What the stacks deploy that the run touches: the table, bucket, log groups, ECR
    repository with the trainer image, the state machine from state_machine/, the
    trainer events' bus and rule and the bucket's notification of drops."""
    create_resources()
    push_image()
    boto3.client("stepfunctions").create_state_machine(
        name=STATE_MACHINE_NAME,
        definition=render_definition(substitutions()),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/whetstone-workflow",
    )
    events = boto3.client("events")
    events.create_event_bus(Name=EVENT_BUS_NAME)
    ingest_url, ingest_arn = _queue(INGEST_QUEUE)
    events.put_rule(
        Name=INGEST_RULE,
        EventBusName=EVENT_BUS_NAME,
        EventPattern=json.dumps({"source": [EVENT_SOURCE]}),
    )
    events.put_targets(
        Rule=INGEST_RULE,
        EventBusName=EVENT_BUS_NAME,
        Targets=[{"Id": "ingest", "Arn": ingest_arn}],
    )
    drop_url, drop_arn = _queue(DROP_QUEUE)
    prefix = {"Key": {"FilterRules": [{"Name": "prefix", "Value": INCOMING_ROOT}]}}
    boto3.client("s3").put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": drop_arn, "Events": ["s3:ObjectCreated:*"], "Filter": prefix}
            ]
        },
    )
    return Queues(ingest=ingest_url, drop=drop_url)
