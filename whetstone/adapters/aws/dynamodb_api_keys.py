"""The ApiKeyStore on the jobs' DynamoDB table (layout: dynamodb_requests.py's docstring).

| item    | PK                | SK       | GSI1PK          | GSI1SK               |
|---------|-------------------|----------|-----------------|----------------------|
| api key | `APIKEY#<sha256>` | `APIKEY` | `APIKEYS#<org>` | `<created>#<key_id>` |

The authorizer finds a key by the hash of the secret it was sent (GetItem); an
organization's keys are a Query of GSI1, whose partitions for jobs are `ORG#<org>`, so
keys never show among jobs. An item holds `record` (the ApiKey as JSON, without its last
use), `key_id`, `org_id` and `last_used_at`, which the authorizer sets on its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import boto3

from whetstone.adapters.aws.dynamodb_requests import INDEX_NAME, Item, sortable_time
from whetstone.core.api_keys import ApiKey
from whetstone.core.errors import ConflictError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

KEY_SK = "APIKEY"


def key_item_key(sha256: str) -> Item:
    return {"PK": {"S": f"APIKEY#{sha256}"}, "SK": {"S": KEY_SK}}


def key_partition(org_id: str) -> str:
    return f"APIKEYS#{org_id}"


def key_item(key: ApiKey) -> Item:
    return {
        **key_item_key(key.sha256),
        "GSI1PK": {"S": key_partition(key.org_id)},
        "GSI1SK": {"S": f"{sortable_time(key.created_at)}#{key.key_id}"},
        "record": {"S": key.model_dump_json(exclude={"last_used_at"})},
        "key_id": {"S": key.key_id},
        "org_id": {"S": key.org_id},
    }


def key_from_item(item: Item) -> ApiKey:
    key = ApiKey.model_validate_json(item["record"]["S"])
    last_used = item.get("last_used_at")
    if last_used is None:
        return key
    return key.model_copy(update={"last_used_at": datetime.fromisoformat(last_used["S"])})


class DynamoDBApiKeyStore:
    """ApiKeyStore on the jobs' table."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client: DynamoDBClient = client or boto3.client("dynamodb")

    def put(self, key: ApiKey) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=key_item(key),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except self._client.exceptions.ConditionalCheckFailedException as error:
            raise ConflictError(f"the API key {key.key_id} exists", code="api_key_exists") from (
                error
            )

    def find(self, sha256: str) -> ApiKey | None:
        response = self._client.get_item(
            TableName=self._table, Key=key_item_key(sha256), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else key_from_item(item)

    def list_keys(self, org_id: str) -> list[ApiKey]:
        keys: list[ApiKey] = []
        start: dict[str, object] = {}
        while True:
            response = self._client.query(
                TableName=self._table,
                IndexName=INDEX_NAME,
                KeyConditionExpression="GSI1PK = :org",
                ExpressionAttributeValues={":org": {"S": key_partition(org_id)}},
                ScanIndexForward=False,
                **start,  # type: ignore[arg-type]
            )
            keys.extend(key_from_item(item) for item in response["Items"])
            if "LastEvaluatedKey" not in response:
                return keys
            start = {"ExclusiveStartKey": response["LastEvaluatedKey"]}

    def delete(self, org_id: str, key_id: str) -> ApiKey | None:
        matches = [key for key in self.list_keys(org_id) if key.key_id == key_id]
        if not matches:
            return None
        self._client.delete_item(TableName=self._table, Key=key_item_key(matches[0].sha256))
        return matches[0]

    def touch(self, sha256: str, when: datetime) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key_item_key(sha256),
                UpdateExpression="SET last_used_at = :when",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues={":when": {"S": when.isoformat()}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return  # revoked meanwhile: the item must not come back
