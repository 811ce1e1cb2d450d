"""Per-organization request throttling on the jobs table: a fixed-window counter per
organization, so one organization's burst cannot use up the stage-wide API Gateway limit.

One item per organization, `PK=ORG#<org>, SK=THROTTLE`, holds `window` (N, the start of
the current window in seconds since the epoch) and `count` (N, requests in it). A request
is one UpdateItem: `ADD count 1` on the condition `window = :now_window AND count < :limit`;
when the stored window is older (or there is none), a second UpdateItem starts the new
window with `count = 1` on the condition `attribute_not_exists(PK) OR window < :now_window`.
Both fail only when the current window is full: the request is refused, to be retried when
the window ends. Each check is atomic, so concurrent Lambdas cannot pass the limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import boto3

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

THROTTLE_SK = "THROTTLE"


class DynamoDBRequestThrottle:
    """At most `limit` requests of an organization in each `window_s` window."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | None = None,
        *,
        limit: int,
        window_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table_name
        self._client: DynamoDBClient = client or boto3.client("dynamodb")
        self._limit = limit
        self._window_s = window_s
        self._clock = clock

    def take(self, org_id: str) -> float | None:
        now = self._clock()
        window = int(now // self._window_s) * self._window_s
        counted = self._update(
            org_id, "ADD #count :one", "#window = :window AND #count < :limit", window
        ) or self._update(
            org_id,
            "SET #window = :window, #count = :one",
            "attribute_not_exists(PK) OR #window < :window",
            window,
        )
        return None if counted else max(math.ceil(window + self._window_s - now), 1)

    def _update(self, org_id: str, expression: str, condition: str, window: int) -> bool:
        """One conditional UpdateItem of the organization's counter; False when the
        condition failed."""
        values: dict[str, AttributeValueTypeDef] = {
            ":one": {"N": "1"},
            ":window": {"N": str(window)},
        }
        if ":limit" in condition:
            values[":limit"] = {"N": str(self._limit)}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"PK": {"S": f"ORG#{org_id}"}, "SK": {"S": THROTTLE_SK}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#window": "window", "#count": "count"},
                ExpressionAttributeValues=values,
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True
