"""Who is calling: the claims API Gateway's authorizer puts on each request.

The Lambda authorizer (functions/authorizer.py) yields a Cognito user's claims, or those
of the user who created the API key the request carries, with CREDENTIAL_CLAIM saying
which. `whet serve` puts the same claims there for its local users, so the routes read
identity one way in both runtimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

from whetstone.core.errors import ForbiddenError, UnauthenticatedError
from whetstone.core.job import Caller

USER_CLAIM = "sub"
ORG_CLAIM = "custom:organization"
CREDENTIAL_CLAIM = "whetstone:credential"
API_KEY_CREDENTIAL = "api_key"


def claims_for(caller: Caller) -> dict[str, str]:
    return {USER_CLAIM: caller.user_id, ORG_CLAIM: caller.org_id}


def request_claims(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The claims of a proxy event: under `claims` (a Cognito authorizer, `whet serve`), or the
    context of a Lambda authorizer itself, which holds flat values only."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims: Mapping[str, Any] = authorizer.get("claims") or authorizer
    return claims


def current_caller(app: BaseRouter) -> Caller:
    claims = request_claims(app.current_event.raw_event)
    user, org = claims.get(USER_CLAIM), claims.get(ORG_CLAIM)
    if not user or not org:
        raise UnauthenticatedError(
            "the request carries no user and organization; send a valid token",
        )
    return Caller(user_id=str(user), org_id=str(org))


def signed_in_user(app: BaseRouter) -> Caller:
    """The caller, when signed in as a user; ForbiddenError when the request carries an API
    key (a key cannot manage keys)."""
    caller = current_caller(app)
    if request_claims(app.current_event.raw_event).get(CREDENTIAL_CLAIM) == API_KEY_CREDENTIAL:
        raise ForbiddenError(
            "API keys are managed by signed-in users only; send your Cognito ID token",
            code="api_key_not_allowed",
        )
    return caller
