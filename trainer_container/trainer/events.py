"""Event sinks (JSON lines on stdout, EventBridge) and the emitter the recipe reports through."""

from __future__ import annotations

import json
import math
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import IO, Any, Protocol

from whetstone.core.batches import split_batches
from whetstone.core.events import (
    EVENT_SOURCE,
    CheckpointDetail,
    Detail,
    LogDetail,
    LogLevel,
    MetricsDetail,
    ResourcesDetail,
    StatusDetail,
    TrainerErrorCode,
    TrainerEvent,
    TrainerPhase,
    TrainerStage,
    TrainingDevice,
    make_event,
)
from whetstone.core.plan import EventSinkSettings

# PutEvents takes at most 10 entries and 256 KiB per call.
MAX_ENTRIES_PER_PUT = 10
MAX_BYTES_PER_PUT = 256 * 1024


class EventSink(Protocol):
    def send(self, event: TrainerEvent) -> None: ...
    def close(self) -> None: ...


class StdoutSink:
    """One JSON line per event on a stream (the process's real stdout by default)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()

    def send(self, event: TrainerEvent) -> None:
        line = event.model_dump_json()
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def close(self) -> None:
        with self._lock:
            self._stream.flush()


class NullSink:
    """For ranks other than 0 in a multi-GPU run: rank 0 reports for all."""

    def send(self, event: TrainerEvent) -> None:
        return None

    def close(self) -> None:
        return None


def eventbridge_entry(event: TrainerEvent, bus_name: str) -> dict[str, Any]:
    """The PutEvents entry of an event: the whole envelope travels as the detail."""
    return {
        "Source": EVENT_SOURCE,
        "DetailType": event.detail_type.value,
        "Time": event.time,
        "Detail": event.model_dump_json(),
        "EventBusName": bus_name,
    }


def batch_entries(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split entries into PutEvents calls within the count and size limits."""
    return split_batches(
        entries,
        size=lambda e: len(e["Detail"]) + len(e["DetailType"]) + len(e["Source"]),
        max_count=MAX_ENTRIES_PER_PUT,
        max_bytes=MAX_BYTES_PER_PUT,
    )


@dataclass(eq=False)
class EventBridgeSink:
    """Buffers events and sends them with batched PutEvents, retrying failed entries.

    A background thread flushes every `flush_interval_s`; `close()` flushes what is left.
    Entries still failing after `max_attempts` are dropped and reported on stderr: losing a
    metrics point must never stop training.
    """

    bus_name: str
    client: Any
    _: KW_ONLY
    flush_interval_s: float = 1.0
    max_attempts: int = 5
    base_delay_s: float = 0.2
    sleep: Callable[[float], None] = time.sleep
    _buffer: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _send_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stopped: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="eventbridge-flush", daemon=True)
        self._thread.start()

    def send(self, event: TrainerEvent) -> None:
        with self._lock:
            self._buffer.append(eventbridge_entry(event, self.bus_name))

    def _run(self) -> None:
        while not self._stopped.wait(self.flush_interval_s):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            entries, self._buffer = self._buffer, []
        with self._send_lock:
            for batch in batch_entries(entries):
                self._put(batch)

    def _put(self, entries: list[dict[str, Any]]) -> None:
        pending = entries
        for attempt in range(self.max_attempts):
            try:
                response = self.client.put_events(Entries=pending)
            except Exception as exc:  # throttling, network: retry the whole batch
                error: str = type(exc).__name__
            else:
                results = response.get("Entries", [])
                pending = [e for e, r in zip(pending, results, strict=False) if "ErrorCode" in r]
                if not pending:
                    return
                error = str(results[0].get("ErrorCode")) if results else "unknown"
            if attempt + 1 < self.max_attempts:
                self.sleep(self.base_delay_s * 2**attempt * (0.5 + random.random()))
        sys.stderr.write(f"dropped {len(pending)} events after retries: {error}\n")

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self.flush()


def build_sink(settings: EventSinkSettings, *, stream: IO[str] | None = None) -> EventSink:
    if settings.kind == "eventbridge":
        import boto3

        assert settings.bus_name is not None  # checked by EventSinkSettings
        client = boto3.client("events", region_name=settings.region)
        return EventBridgeSink(settings.bus_name, client)
    return StdoutSink(stream)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class EventEmitter:
    """What the recipe and its callbacks call to report; every event goes through the sink."""

    def __init__(
        self,
        job_id: str,
        sink: EventSink,
        stage: TrainerStage = TrainerStage.TRAIN,
        credential: str | None = None,
    ) -> None:
        self.job_id = job_id
        self.sink = sink
        self.stage = stage  # every status event says which run of the trainer it is
        self._credential = credential

    def emit(self, detail: Detail) -> TrainerEvent:
        event = make_event(self.job_id, detail, credential=self._credential)
        self.sink.send(event)
        return event

    def status(
        self,
        phase: TrainerPhase,
        message: str | None = None,
        *,
        step: int | None = None,
        error_code: TrainerErrorCode | None = None,
        device: TrainingDevice | None = None,
    ) -> None:
        detail = StatusDetail(
            phase=phase,
            stage=self.stage,
            message=message,
            step=step,
            error_code=error_code,
            device=device,
        )
        self.emit(detail)

    def log(self, level: LogLevel, message: str, **fields: Any) -> None:
        safe = json.loads(json.dumps(fields, default=str))
        self.emit(LogDetail(level=level, message=message, fields=safe))

    def metrics(self, detail: MetricsDetail) -> None:
        self.emit(detail)

    def resources(self, detail: ResourcesDetail) -> None:
        self.emit(detail)

    def checkpoint(
        self, *, step: int, epoch: float, location: str, eval_loss: float | None = None
    ) -> None:
        self.emit(
            CheckpointDetail(
                step=step, epoch=max(0.0, epoch), location=location, eval_loss=_finite(eval_loss)
            )
        )

    def close(self) -> None:
        self.sink.close()
