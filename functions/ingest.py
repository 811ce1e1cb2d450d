"""EventBridge rule (source whetstone.trainer) → the job's metrics, logs, status and cost."""

from __future__ import annotations

from typing import Any

from whetstone import runtime
from whetstone.core.events import parse_trainer_event
from whetstone.observability import EVENTBRIDGE, lambda_entry, log_job, logger
from whetstone.service.ingest import ingest_event


@lambda_entry(EVENTBRIDGE)
def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    trainer_event = parse_trainer_event(event)
    log_job(trainer_event.job_id)
    logger.info("trainer event", detail_type=trainer_event.detail_type.value)
    ingest_event(runtime.get_platform(), trainer_event)
    return {"job_id": trainer_event.job_id, "detail_type": trainer_event.detail_type.value}
