"""The REST API: one resolver, shared by the Lambda entry point and `whet serve`."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import OpenAPI
from aws_lambda_powertools.utilities.typing import LambdaContext

from whetstone.api.errors import register_error_handlers, throttled
from whetstone.api.identity import ORG_CLAIM, request_claims
from whetstone.api.openai import routes_chat, routes_files, routes_jobs, routes_models
from whetstone.api.openai.errors import OPENAI_PREFIX, is_openai_path, to_openai_error
from whetstone.api.openapi_errors import document_errors
from whetstone.api.paths import API_PREFIX
from whetstone.api.resolver import ThreadSafeResolver
from whetstone.api.routes import api_keys, datasets, deployments, evaluation, jobs, planning
from whetstone.core.job import JOB_ID_PREFIX
from whetstone.observability import API_GATEWAY, lambda_entry, log_job

OPENAPI_PATH = "/api/v1/openapi.json"
DOCS_PATH = "/api/v1/docs"
TITLE = "Whetstone fine-tuning API"
VERSION = "1.0.0"
_JOB_IN_PATH = re.compile(rf"/jobs/({JOB_ID_PREFIX}[0-9a-z]+)")


class _Resolver(ThreadSafeResolver):
    """The API's resolver, whose OpenAPI document (served as JSON and in the docs page)
    states every operation's errors with the error body the API really returns."""

    def get_openapi_schema(self, **options: Any) -> OpenAPI:
        document = super().get_openapi_schema(**options)
        dumped = document.model_dump(mode="json", by_alias=True, exclude_none=True)
        return OpenAPI.model_validate(document_errors(dumped))


app = _Resolver(enable_validation=True)
app.include_router(planning.router, prefix=API_PREFIX)
app.include_router(jobs.router, prefix=API_PREFIX)
app.include_router(datasets.router, prefix=API_PREFIX)
app.include_router(deployments.router, prefix=API_PREFIX)
app.include_router(evaluation.router, prefix=API_PREFIX)
app.include_router(api_keys.router, prefix=API_PREFIX)
for openai_routes in (routes_files, routes_jobs, routes_models, routes_chat):
    app.include_router(openai_routes.router, prefix=OPENAI_PREFIX)
register_error_handlers(app)


@cache
def _enable_docs() -> None:
    """The interactive docs, registered on their first request: building them costs about
    0.1 s that no other request should pay at a cold start."""
    app.enable_swagger(path=DOCS_PATH, title=TITLE, version=VERSION)


@app.get(OPENAPI_PATH, include_in_schema=False)
def openapi_document() -> dict[str, Any]:
    return app.get_openapi_schema(title=TITLE, version=VERSION).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )


@lambda_entry(API_GATEWAY)
def handler(event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
    """API Gateway (REST, proxy integration) entry point; `whet serve` passes no context."""
    if event.get("path") == DOCS_PATH:
        _enable_docs()
    if context is not None:  # whet serve's threads share the logger: no keys there
        _log_caller_and_job(event)
    # The document and the docs page are static: they count against no organization's rate
    # and build no platform.
    refused = None if event.get("path") in (OPENAPI_PATH, DOCS_PATH) else throttled(event)
    response = refused or app.resolve(event, context)  # type: ignore[arg-type]
    return to_openai_error(response) if is_openai_path(event.get("path")) else response


def _log_caller_and_job(event: dict[str, Any]) -> None:
    job = _JOB_IN_PATH.search(event.get("path") or "")
    log_job(job.group(1) if job else None, request_claims(event).get(ORG_CLAIM))
