"""Scheduled (EventBridge Scheduler): repair jobs whose workflow, Kubernetes Job or model
server no longer matches their record."""

from __future__ import annotations

from typing import Any

from whetstone import runtime
from whetstone.observability import EVENTBRIDGE, lambda_entry
from whetstone.service.reconcile import reconcile
from whetstone.service.serving_reconcile import ServedModels


@lambda_entry(EVENTBRIDGE)
def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    ports = runtime.get_aws_workflow_ports()
    platform = runtime.get_platform()
    servers = platform.deployer if isinstance(platform.deployer, ServedModels) else None
    repairs = reconcile(platform, ports.orchestrator, ports.compute, servers=servers)
    return repairs.model_dump()
