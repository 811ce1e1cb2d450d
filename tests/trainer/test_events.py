"""The event schema, and the EventBridge sink (batched PutEvents with retries) under moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from trainer.events import EventBridgeSink, batch_entries, eventbridge_entry

from whetstone.core.events import (
    LogDetail,
    MetricsDetail,
    StatusDetail,
    TrainerErrorCode,
    TrainerEvent,
    TrainerPhase,
    make_event,
    parse_trainer_event,
)


def _metrics(step: int = 1) -> MetricsDetail:
    return MetricsDetail(step=step, max_steps=100, epoch=0.1, progress=step / 100, loss=2.5)


def test_event_round_trips_through_a_json_line() -> None:
    event = make_event("job-1", _metrics())
    parsed = parse_trainer_event(event.model_dump_json())
    assert parsed == event and parsed.source == "whetstone.trainer"
    assert isinstance(parsed.detail, MetricsDetail)


def test_detail_must_match_its_detail_type() -> None:
    with pytest.raises(ValidationError):
        TrainerEvent.model_validate(
            {
                "job_id": "j",
                "time": datetime.now(UTC).isoformat(),
                "detail_type": "metrics",
                "detail": {"level": "info", "message": "hello"},
            }
        )


def test_failed_status_needs_an_error_code_and_others_must_not_have_one() -> None:
    with pytest.raises(ValidationError):
        StatusDetail(phase=TrainerPhase.FAILED, message="boom")
    with pytest.raises(ValidationError):
        StatusDetail(phase=TrainerPhase.DONE, error_code=TrainerErrorCode.DATA_ERROR)
    assert StatusDetail(phase=TrainerPhase.FAILED, error_code=TrainerErrorCode.DATA_ERROR)


def test_eventbridge_event_is_parsed_from_its_detail() -> None:
    event = make_event("job-1", LogDetail(level="warning", message="loss spike"))
    wrapped = {
        "source": "whetstone.trainer",
        "detail-type": "log",
        "detail": json.loads(event.model_dump_json()),
    }
    assert parse_trainer_event(wrapped) == event


def test_entries_are_batched_within_putevents_limits() -> None:
    entries = [eventbridge_entry(make_event("j", _metrics(i)), "bus") for i in range(23)]
    big = eventbridge_entry(make_event("j", LogDetail(level="info", message="x" * 200_000)), "bus")
    batches = batch_entries([*entries, big, big])
    assert [len(b) for b in batches] == [10, 10, 4, 1]
    assert all(e["DetailType"] == "metrics" for e in batches[0])


class FlakyEvents:
    """Fails the first entry of the first call, as PutEvents does under throttling."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(Entries)
        if len(self.calls) == 1:
            results = [{"ErrorCode": "ThrottlingException"}] + [{"EventId": "x"}] * (
                len(Entries) - 1
            )
            return {"FailedEntryCount": 1, "Entries": results}
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "x"}] * len(Entries)}


def test_failed_entries_are_retried_alone() -> None:
    client = FlakyEvents()
    sleeps: list[float] = []
    sink = EventBridgeSink("bus", client, flush_interval_s=3600, sleep=sleeps.append)
    for step in range(3):
        sink.send(make_event("j", _metrics(step)))
    sink.close()
    assert [len(c) for c in client.calls] == [3, 1]
    assert client.calls[1][0] is client.calls[0][0] and len(sleeps) == 1


def test_events_reach_an_eventbridge_rule_target() -> None:
    # Given a bus whose rule forwards trainer events to a queue
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    with moto.mock_aws():
        events = boto3.client("events", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        events.create_event_bus(Name="whetstone")
        queue = sqs.create_queue(QueueName="trainer-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name="trainer",
            EventBusName="whetstone",
            EventPattern=json.dumps({"source": ["whetstone.trainer"]}),
        )
        events.put_targets(
            Rule="trainer", EventBusName="whetstone", Targets=[{"Id": "q", "Arn": arn}]
        )
        # When the sink sends 12 events (two PutEvents calls)
        sink = EventBridgeSink("whetstone", events, flush_interval_s=3600)
        sent = [make_event("job-9", _metrics(step)) for step in range(12)]
        for event in sent:
            sink.send(event)
        sink.close()
        # Then all arrive, and each parses back into the event that was sent
        bodies: list[str] = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
            bodies += [m["Body"] for m in batch]
            for message in batch:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        received = sorted((parse_trainer_event(b) for b in bodies), key=lambda e: e.detail.step)
        assert received == sent
