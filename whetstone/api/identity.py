"""Who is calling: the claims API Gateway's Cognito authorizer puts on each request.

`whet serve` puts the same claims there for its local users, so the routes read
identity one way in both runtimes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

from whetstone.core.errors import UnauthenticatedError
from whetstone.core.job import Caller

USER_CLAIM = "sub"
ORG_CLAIM = "custom:organization"


def claims_for(caller: Caller) -> dict[str, str]:
    return {USER_CLAIM: caller.user_id, ORG_CLAIM: caller.org_id}


def current_caller(app: BaseRouter) -> Caller:
    authorizer: Any = app.current_event.raw_event.get("requestContext", {}).get("authorizer")
    claims = (authorizer or {}).get("claims") or {}
    user, org = claims.get(USER_CLAIM), claims.get(ORG_CLAIM)
    if not user or not org:
        raise UnauthenticatedError(
            "the request carries no user and organization; send a valid token",
        )
    return Caller(user_id=str(user), org_id=str(org))
