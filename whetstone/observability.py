"""The one Logger every process shares, and what each Lambda entry point adds to it.

Every Lambda invocation's lines carry the Lambda context (`function_request_id`, ...)
and a `correlation_id` from its event; where one job is in scope, `job_id` (and
`org_id` where the event names it) as well: docs/workflow.md, "Logs of one job".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

logger = Logger(service="whetstone")

# Where each event source carries the id of what it asks (JMESPath into the event).
API_GATEWAY = correlation_paths.API_GATEWAY_REST
EVENTBRIDGE = correlation_paths.EVENT_BRIDGE
STEP_FUNCTIONS = "job_id"  # each execution is named after its job
S3_EVENT = 'Records[0].responseElements."x-amz-request-id"'

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_entry(correlation_id_path: str) -> Callable[[Handler], Handler]:
    """Decorate a Lambda entry point: its lines carry the Lambda context and the event's
    correlation id, and no key of the previous invocation. Called without a context
    (`whet serve`, whose threads share the logger, and tests), the handler runs as is."""

    def decorate(handler: Handler) -> Handler:
        injected = logger.inject_lambda_context(
            handler, correlation_id_path=correlation_id_path, clear_state=True
        )

        @functools.wraps(handler)
        def entry(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
            if context is None:
                try:
                    return handler(event, context)
                finally:  # nothing clears the shared logger's keys for the next caller
                    logger.remove_keys(["job_id", "org_id"])
            result: dict[str, Any] = injected(event, context)
            return result

        return entry

    return decorate


def log_job(job_id: str | None, org_id: str | None = None) -> None:
    """Name the job (and organization) of this invocation on every line it logs from now on;
    a key that is None is left out."""
    logger.append_keys(job_id=job_id, org_id=org_id)
