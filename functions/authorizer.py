"""API Gateway Lambda authorizer (TOKEN type, on every method of the REST API).

`Authorization: Bearer <credential>` (or the bare credential) is either an API key of an
organization (`whet_…`, looked up by its hash) or a Cognito ID token (verified against the
user pool's JWKS) issued to the CLI's app client or the web console's. Either way the
answer allows the whole API and carries the claims the routes read
(whetstone.api.identity): the user, the organization, and which credential it was.
Anything else is refused with 401 ("Unauthorized"), as API Gateway expects.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
    APIGatewayAuthorizerTokenEvent,
)

from whetstone.adapters.aws.cognito_tokens import CognitoTokenVerifier, user_pool_issuer
from whetstone.adapters.aws.dynamodb_api_keys import DynamoDBApiKeyStore
from whetstone.api.identity import API_KEY_CREDENTIAL, CREDENTIAL_CLAIM, ORG_CLAIM, USER_CLAIM
from whetstone.core.errors import UnauthenticatedError
from whetstone.core.tokens import looks_like_token
from whetstone.observability import lambda_entry, logger
from whetstone.service.api_keys import authenticate_api_key
from whetstone.settings import get_settings

COGNITO_CREDENTIAL = "cognito"
# The message API Gateway turns into 401; any other failure answers 500.
UNAUTHORIZED = "Unauthorized"
# A TOKEN event carries no request id: its lines name the method it was asked about.
METHOD_ARN = "methodArn"


@cache
def key_store() -> DynamoDBApiKeyStore:
    return DynamoDBApiKeyStore(get_settings().table_name)


@cache
def token_verifier() -> CognitoTokenVerifier:
    settings = get_settings()
    if not settings.user_pool_id or not settings.user_pool_client_id:
        raise RuntimeError(
            "WHETSTONE_USER_POOL_ID and WHETSTONE_USER_POOL_CLIENT_ID must be set (infra sets them)"
        )
    issuer = user_pool_issuer(settings.aws_region, settings.user_pool_id)
    # The console (hosted UI) has its own app client; its users' ID tokens name it.
    clients = [settings.user_pool_client_id, settings.console_client_id]
    return CognitoTokenVerifier(issuer, [client for client in clients if client])


def credential_of(header: str) -> str:
    """The credential of an Authorization header: `Bearer <credential>` (the scheme in any
    case, as HTTP allows) or the bare credential."""
    scheme, _, rest = header.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else header.strip()


def claims_of(credential: str) -> dict[str, str]:
    """The claims a request with `credential` carries; UnauthenticatedError if none."""
    if looks_like_token(credential):
        caller = authenticate_api_key(key_store(), credential)
        return {
            USER_CLAIM: caller.user_id,
            ORG_CLAIM: caller.org_id,
            CREDENTIAL_CLAIM: API_KEY_CREDENTIAL,
        }
    claims = token_verifier().verify(credential)
    user, org = claims.get(USER_CLAIM), claims.get(ORG_CLAIM)
    if not isinstance(user, str) or not isinstance(org, str) or not org:
        raise UnauthenticatedError("the user has no organization; ask an administrator to set it")
    return {USER_CLAIM: user, ORG_CLAIM: org, CREDENTIAL_CLAIM: COGNITO_CREDENTIAL}


@lambda_entry(METHOD_ARN)
def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """Allow the whole API with the caller's claims (the answer is cached per credential for
    the authorizer's TTL), or raise Unauthorized."""
    request = APIGatewayAuthorizerTokenEvent(event)
    credential = credential_of(request.authorization_token)
    try:
        claims = claims_of(credential)
    except UnauthenticatedError as error:
        logger.info("request refused", reason=error.message)
        raise PermissionError(UNAUTHORIZED) from None
    arn = request.parsed_arn
    response = APIGatewayAuthorizerResponse(
        principal_id=claims[USER_CLAIM],
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        context=dict(claims),
        partition=arn.partition,
    )
    response.allow_all_routes()
    return response.asdict()
