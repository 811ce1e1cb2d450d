"""API Gateway REST proxy → the Whetstone API router; answers carry CORS headers for the
web console's origin (WHETSTONE_CONSOLE_ORIGIN) alone."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from whetstone.api.app import handler as route
from whetstone.api.cors import with_cors
from whetstone.settings import get_settings


def handler(event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
    return with_cors(route(event, context), event, get_settings().console_origin)
