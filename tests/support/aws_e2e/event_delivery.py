"""Lambda targets of the stacks' notifications, fed from the queues moto delivers them to:
the trainer events' rule → the ingest handler (one invocation per event, the whole event:
the rule's target has no input transformer); the bucket's ObjectCreated under incoming/ →
the S3-trigger handler (the notification's Records)."""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

POLL_WAIT_S = 1


@dataclass
class EventDelivery:
    """Polls a queue on a thread and invokes `handler` with each message's event; what an
    invocation raised is kept in `errors` (the service would retry, then drop)."""

    queue_url: str
    handler: Callable[[dict[str, Any]], Any]
    delivered: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"deliver-{self.queue_url}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        sqs = boto3.client("sqs")
        while not self._stop.is_set():
            answer = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=POLL_WAIT_S
            )
            for message in answer.get("Messages", []):
                event = json.loads(message["Body"])
                try:
                    self.handler(event)
                except Exception:
                    self.errors.append(traceback.format_exc())
                self.delivered.append(event)
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
