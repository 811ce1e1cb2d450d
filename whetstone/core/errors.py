"""The domain errors services raise; the API maps each class to one HTTP status."""

from __future__ import annotations

from typing import Any


class WhetstoneError(Exception):
    """Base of every domain error: a stable machine-readable code and a message to act on."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class NotFoundError(WhetstoneError):
    """The resource does not exist, or belongs to another organization."""

    code = "not_found"


class ConflictError(WhetstoneError):
    """The request contradicts the resource's current state (e.g. an illegal transition)."""

    code = "conflict"


class InvalidInputError(WhetstoneError):
    """The input is well-formed but violates a rule; `details` says what to fix."""

    code = "invalid_input"


class QuotaExceededError(WhetstoneError):
    """The organization reached one of its limits."""

    code = "quota_exceeded"


class BudgetExceededError(WhetstoneError):
    """The spend asked for would go beyond a budget; `details` holds the figures."""

    code = "budget_exceeded"


class StaleWriteError(ConflictError):
    """A conditional write found the record changed since it was read."""

    code = "stale_write"


class UnauthenticatedError(WhetstoneError):
    """The request carries no valid identity."""

    code = "unauthenticated"


class ForbiddenError(WhetstoneError):
    """The caller is known but may not do this (e.g. manage API keys with an API key)."""

    code = "forbidden"


class TransientError(Exception):
    """A dependency failed in a way worth retrying (throttling, an API server restarting).

    Workflow steps let it through unchanged, so the state machine's Retry sees it by name.
    """
