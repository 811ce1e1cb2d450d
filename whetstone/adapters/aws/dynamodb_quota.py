"""The DynamoDB requests of an organization's quota counter, as pure functions.

One item per organization, `PK=ORG#<org>, SK=ACTIVE`, holds `active_jobs` and
`active_gpus` (N): the jobs that have not ended and the GPUs their specs ask for.

- create: the job's Put and an Update of the counter in one TransactWriteItems;
  the Update adds 1 and the job's GPUs on the condition that the counter exists,
  `active_jobs < :max_jobs` and `active_gpus <= :max_gpus - gpus`, so concurrent
  creates cannot pass the quota.
- a job ends: the save that writes its terminal status is a transaction with an
  Update adding -1 and -GPUs, and the job's Put is conditional on the stored status
  not being terminal, so only the one save that ends it gives its slot back.
- seed: the first create of an organization without a counter counts its jobs that
  have not ended (a Query of GSI1) and Puts the counter with `attribute_not_exists`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from whetstone.adapters.aws.dynamodb_requests import INDEX_NAME
from whetstone.core.lifecycle import TERMINAL_STATUSES
from whetstone.core.quota import ActiveLimits, ActiveUsage

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        PutItemInputTypeDef,
        QueryInputTypeDef,
        TransactWriteItemTypeDef,
    )

COUNTER_SK = "ACTIVE"
_ENDED = sorted(status.value for status in TERMINAL_STATUSES)
# The condition a job's Put carries when its save may end it: the stored job has not ended.
NOT_ENDED = "NOT #status IN (" + ", ".join(f":ended{i}" for i in range(len(_ENDED))) + ")"


def not_ended_values() -> dict[str, AttributeValueTypeDef]:
    return {f":ended{i}": {"S": value} for i, value in enumerate(_ENDED)}


def counter_key(org_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"PK": {"S": f"ORG#{org_id}"}, "SK": {"S": COUNTER_SK}}


def usage_from_item(item: Mapping[str, AttributeValueTypeDef] | None) -> ActiveUsage | None:
    """The usage a counter item holds; None when there is no counter yet."""
    if item is None:
        return None
    return ActiveUsage(
        jobs=max(int(item["active_jobs"]["N"]), 0), gpus=max(int(item["active_gpus"]["N"]), 0)
    )


def seed_request(table_name: str, org_id: str, usage: ActiveUsage) -> PutItemInputTypeDef:
    """The counter's first value, unless another request seeded it first."""
    return {
        "TableName": table_name,
        "Item": {
            **counter_key(org_id),
            "active_jobs": {"N": str(usage.jobs)},
            "active_gpus": {"N": str(usage.gpus)},
        },
        "ConditionExpression": "attribute_not_exists(PK)",
    }


def reserve_item(
    table_name: str, org_id: str, gpus: int, limits: ActiveLimits
) -> TransactWriteItemTypeDef:
    """Take one job's slot and its GPUs if the quota has room for them."""
    return {
        "Update": {
            "TableName": table_name,
            "Key": counter_key(org_id),
            "UpdateExpression": "ADD active_jobs :one, active_gpus :gpus",
            "ConditionExpression": (
                "attribute_exists(PK) AND active_jobs < :max_jobs AND active_gpus <= :room"
            ),
            "ExpressionAttributeValues": {
                ":one": {"N": "1"},
                ":gpus": {"N": str(gpus)},
                ":max_jobs": {"N": str(limits.max_jobs)},
                ":room": {"N": str(limits.max_gpus - gpus)},
            },
        }
    }


def release_item(table_name: str, org_id: str, gpus: int) -> TransactWriteItemTypeDef:
    """Give back an ended job's slot and GPUs (nothing to give back without a counter)."""
    return {
        "Update": {
            "TableName": table_name,
            "Key": counter_key(org_id),
            "UpdateExpression": "ADD active_jobs :minus_one, active_gpus :minus_gpus",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeValues": {
                ":minus_one": {"N": "-1"},
                ":minus_gpus": {"N": str(-gpus)},
            },
        }
    }


def active_jobs_query(table_name: str, org_id: str) -> QueryInputTypeDef:
    """The organization's jobs that have not ended, on GSI1 (to seed its counter)."""
    return {
        "TableName": table_name,
        "IndexName": INDEX_NAME,
        "KeyConditionExpression": "GSI1PK = :org",
        "FilterExpression": NOT_ENDED,
        "ProjectionExpression": "#record",
        "ExpressionAttributeNames": {"#status": "status", "#record": "record"},
        "ExpressionAttributeValues": {":org": {"S": f"ORG#{org_id}"}, **not_ended_values()},
    }
