"""One place where every error becomes an HTTP response."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import Field, ValidationError

from whetstone.api.identity import ORG_CLAIM, request_claims
from whetstone.core.deferred import DeferredModel
from whetstone.core.errors import (
    BudgetExceededError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    QuotaExceededError,
    TransientError,
    UnauthenticatedError,
    WhetstoneError,
)
from whetstone.observability import logger
from whetstone.runtime import get_platform

STATUS_BY_ERROR: dict[type[WhetstoneError], HTTPStatus] = {
    NotFoundError: HTTPStatus.NOT_FOUND,
    ConflictError: HTTPStatus.CONFLICT,
    InvalidInputError: HTTPStatus.UNPROCESSABLE_ENTITY,
    QuotaExceededError: HTTPStatus.TOO_MANY_REQUESTS,
    BudgetExceededError: HTTPStatus.PAYMENT_REQUIRED,
    UnauthenticatedError: HTTPStatus.UNAUTHORIZED,
    ForbiddenError: HTTPStatus.FORBIDDEN,
}


# Where a request's parameters lie, as the framework's error locations begin.
PARAMETER_LOCATIONS = frozenset({"query", "path", "header", "cookie"})


class FieldError(DeferredModel):
    loc: str
    message: str
    type: str


class ErrorBody(DeferredModel):
    """Every error the API answers: a stable code, a sentence for people, and details."""

    code: Annotated[str, Field(description="Stable machine-readable error code.")]
    message: Annotated[str, Field(description="What went wrong and what to do about it.")]
    details: Annotated[
        Any,
        Field(description="More, by code: field errors, a validation report, a fit report."),
    ] = None


def _response(status: HTTPStatus, error: ErrorBody) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=error.model_dump_json(),
    )


def _field_errors(errors: Sequence[Any]) -> list[FieldError]:
    return [
        FieldError(
            loc=".".join(str(part) for part in error.get("loc", ())),
            message=error.get("msg", "").removeprefix("Value error, "),
            type=error.get("type", ""),
        )
        for error in errors
    ]


def _summary(fields: list[FieldError]) -> str:
    return "; ".join(f"{f.loc or 'body'}: {f.message}" for f in fields)


def request_error_status(fields: Sequence[FieldError]) -> HTTPStatus:
    """400 when only the request's parameters are wrong (a bad type, a number out of range,
    a time without a time zone): the request itself is malformed; 422 when its body is
    well-formed JSON whose content is invalid."""
    if fields and all(field.loc.split(".")[0] in PARAMETER_LOCATIONS for field in fields):
        return HTTPStatus.BAD_REQUEST
    return HTTPStatus.UNPROCESSABLE_ENTITY


def register_error_handlers(app: APIGatewayRestResolver) -> None:
    @app.exception_handler(RequestValidationError)
    def _request_invalid(error: RequestValidationError) -> Response[str]:
        fields = _field_errors(error.errors())
        return _response(
            request_error_status(fields),
            ErrorBody(code="validation_error", message=_summary(fields), details=fields),
        )

    @app.exception_handler(ValidationError)
    def _model_invalid(error: ValidationError) -> Response[str]:
        # Raised when a service validates a job spec assembled from the request:
        # locations are paths in the job spec.
        fields = _field_errors(error.errors(include_url=False))
        return _response(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            ErrorBody(code="validation_error", message=_summary(fields), details=fields),
        )

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        # powertools' own HTTP errors (unknown route, bad request ...) keep their meaning;
        # anything else is our bug: log it whole, tell the caller no internals.
        if isinstance(error, ServiceError):
            raise error
        logger.exception("unhandled error")
        return _response(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            ErrorBody(
                code="internal_error",
                message="the server failed to handle the request; it has been logged",
            ),
        )

    @app.exception_handler(TransientError)
    def _dependency_unavailable(error: TransientError) -> Response[str]:
        logger.warning("dependency unavailable", error=str(error))
        response = _response(
            HTTPStatus.SERVICE_UNAVAILABLE,
            ErrorBody(code="unavailable", message=f"{error}; try again shortly"),
        )
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(WhetstoneError)
    def _domain_error(error: WhetstoneError) -> Response[str]:
        status = next(
            (s for cls, s in STATUS_BY_ERROR.items() if isinstance(error, cls)),
            HTTPStatus.INTERNAL_SERVER_ERROR,
        )
        logger.info("request refused", code=error.code, status=int(status))
        return _response(
            status, ErrorBody(code=error.code, message=error.message, details=error.details)
        )


def throttled(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The 429 answer (`rate_limited`, with Retry-After) to a request of an organization past
    its request limit (aws; see docs/security.md); None when it may proceed or the runtime
    has no limit. Checked before routing, so a refused request costs one counter update."""
    org_id = request_claims(event).get(ORG_CLAIM)
    throttle = get_platform().throttle if org_id else None
    wait = throttle.take(str(org_id)) if throttle is not None else None
    if wait is None:
        return None
    logger.info("request refused", code="rate_limited", status=HTTPStatus.TOO_MANY_REQUESTS)
    body = ErrorBody(
        code="rate_limited",
        message=f"your organization is over its request rate; retry in {wait:.0f} s",
    )
    return {
        "statusCode": int(HTTPStatus.TOO_MANY_REQUESTS),
        "headers": {"Content-Type": content_types.APPLICATION_JSON, "Retry-After": f"{wait:.0f}"},
        "body": body.model_dump_json(),
        "isBase64Encoded": False,
    }
