"""Scheduled (EventBridge Scheduler): repair jobs whose workflow or Kubernetes Job is gone."""

from __future__ import annotations

from typing import Any

from whetstone import runtime
from whetstone.observability import EVENTBRIDGE, lambda_entry
from whetstone.service.reconcile import reconcile


@lambda_entry(EVENTBRIDGE)
def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    ports = runtime.get_aws_workflow_ports()
    repairs = reconcile(runtime.get_platform(), ports.orchestrator, ports.compute)
    return repairs.model_dump()
