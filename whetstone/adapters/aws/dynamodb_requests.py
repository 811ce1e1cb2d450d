"""The DynamoDB requests of the JobStore, as pure functions: one table holds jobs,
idempotency keys and metric points.

Table keys: `PK` (hash) and `SK` (range), both strings. One global secondary index,
`GSI1` (`GSI1PK` hash, `GSI1SK` range, projection ALL), which only job items carry.
Billing PAY_PER_REQUEST. `table_definition()` is the CreateTable request; the store
(dynamodb_jobs.py) sends what the functions here build.

Items:

| item        | PK             | SK                          | GSI1PK      | GSI1SK               |
|-------------|----------------|-----------------------------|-------------|----------------------|
| job         | `JOB#<job_id>` | `JOB`                       | `ORG#<org>` | `<created>#<job_id>` |
| idempotency | `ORG#<org>`    | `IDEMPOTENCY#<key>`         | -           | -                    |
| metric      | `JOB#<job_id>` | `METRIC#<name>#<step:010d>` | -           | -                    |

API keys share the table (`APIKEY#<sha256>` items, GSI1 partitions `APIKEYS#<org>`):
dynamodb_api_keys.py.

A job item also holds `record` (the JobRecord as JSON, the source of truth) and the
attributes indexes and filters read: `job_id`, `org_id`, `status`, `method`,
`base_model`, `created_at` (UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, so it sorts as text)
and `version` (N); `<created>` is that `created_at`. An idempotency item holds
`job_id`; a metric item holds `metric_name`, `step` (N), `value` (S, Python's repr,
so NaN and inf survive) and `time`.

Access patterns:

- job by id (the workflow and the event ingest know no organization): GetItem
  `PK=JOB#<id>, SK=JOB`, strongly consistent.
- jobs of an organization, newest first: Query GSI1 `GSI1PK=ORG#<org>`,
  ScanIndexForward=false; the created range is a key condition on GSI1SK
  (`>=`, `<` or BETWEEN), status / method / base model are filter expressions.
  The cursor is the base64 of the last returned item's key. A filtered query
  page may match fewer than `limit` items, so the store keeps querying until it
  has `limit` jobs, the index is exhausted or LIST_READ_BUDGET items were read
  (then the cursor is the last key read, and the page may be short).
- job by idempotency key: GetItem `PK=ORG#<org>, SK=IDEMPOTENCY#<key>`, then the job.
- create: TransactWriteItems of the job and its idempotency item, each with
  `attribute_not_exists(PK)` (a PutItem when there is no key) -> ConflictError.
- save: PutItem conditional on `attribute_exists(PK) AND version = :expected`
  -> StaleWriteError. Every change (status included) bumps the version, so the
  version check also guards the status the writer read.
- metrics of a job: BatchWriteItem of PutRequests (a point at an existing name
  and step replaces it); read by Query `PK=JOB#<id>` with `SK BETWEEN
  METRIC#<name>#<min> AND METRIC#<name>#<max>` per name, or `begins_with(SK,
  METRIC#)` and a filter on `step` for all names.
- delete: Query the keys of the `JOB#<id>` partition, then BatchWriteItem
  DeleteRequests in chunks of 25 (metrics first; the job and its idempotency
  item last, so an interrupted delete can be run again).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from whetstone.core.errors import InvalidInputError
from whetstone.core.job import JobFilter, JobRecord, MetricPoint
from whetstone.core.lifecycle import TERMINAL_STATUSES

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        CreateTableInputTypeDef,
        PutItemInputTypeDef,
        QueryInputTypeDef,
        ScanInputTypeDef,
        TransactWriteItemTypeDef,
        WriteRequestTypeDef,
    )

Item = dict[str, "AttributeValueTypeDef"]

INDEX_NAME = "GSI1"
JOB_SK = "JOB"
METRIC_PREFIX = "METRIC#"
STEP_DIGITS = 10
MAX_STEP = 10**STEP_DIGITS - 1
BATCH_WRITE_SIZE = 25
# A filtered listing reads at least this many index items per Query, so a
# sparse filter does not cost one round trip per job.
FILTERED_READ_SIZE = 100
# The index items one listing request reads at most: a filter that matches little returns a
# short (even empty) page and a cursor rather than reading the organization's whole index.
LIST_READ_BUDGET = 1000
BATCH_WRITE_ATTEMPTS = 8
_KEY_ATTRIBUTES = ("PK", "SK", "GSI1PK", "GSI1SK")


def table_definition(table_name: str = "whetstone") -> CreateTableInputTypeDef:
    """The CreateTable request of the jobs table (keys, GSI1, on-demand billing)."""
    return {
        "TableName": table_name,
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"} for name in _KEY_ATTRIBUTES
        ],
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": INDEX_NAME,
                "KeySchema": [
                    {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                    {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def sortable_time(moment: datetime) -> str:
    """UTC, fixed width, so that text order is time order (a naive time is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def job_key(job_id: str) -> Item:
    return {"PK": _s(f"JOB#{job_id}"), "SK": _s(JOB_SK)}


def org_partition(org_id: str) -> str:
    return f"ORG#{org_id}"


def idempotency_key_item_key(org_id: str, key: str) -> Item:
    return {"PK": _s(org_partition(org_id)), "SK": _s(f"IDEMPOTENCY#{key}")}


def job_item(job: JobRecord) -> Item:
    """The job item: the record as JSON plus the attributes the index and filters read."""
    created = sortable_time(job.created_at)
    return {
        **job_key(job.job_id),
        "GSI1PK": _s(org_partition(job.org_id)),
        "GSI1SK": _s(f"{created}#{job.job_id}"),
        "job_id": _s(job.job_id),
        "org_id": _s(job.org_id),
        "status": _s(job.status.value),
        "method": _s(job.spec.method.value),
        "base_model": _s(job.spec.base_model),
        "created_at": _s(created),
        "version": {"N": str(job.version)},
        "record": _s(job.model_dump_json()),
    }


def record_from_item(item: Mapping[str, AttributeValueTypeDef]) -> JobRecord:
    return JobRecord.model_validate_json(item["record"]["S"])


def create_job_requests(table_name: str, job: JobRecord) -> list[TransactWriteItemTypeDef]:
    """The job item and, when the job has one, its idempotency item; neither may exist."""
    items: list[TransactWriteItemTypeDef] = [
        {
            "Put": {
                "TableName": table_name,
                "Item": job_item(job),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
    ]
    if job.idempotency_key is not None:
        items.append(
            {
                "Put": {
                    "TableName": table_name,
                    "Item": {
                        **idempotency_key_item_key(job.org_id, job.idempotency_key),
                        "job_id": _s(job.job_id),
                    },
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
        )
    return items


def save_job_request(table_name: str, job: JobRecord, expected_version: int) -> PutItemInputTypeDef:
    """PutItem of `job` (already at its new version) if the stored one is at `expected_version`."""
    return {
        "TableName": table_name,
        "Item": job_item(job),
        "ConditionExpression": "attribute_exists(PK) AND #version = :expected",
        "ExpressionAttributeNames": {"#version": "version"},
        "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
    }


def created_range(filters: JobFilter) -> tuple[str | None, str | None]:
    """The GSI1SK bounds of the filter's created range: inclusive start, exclusive end."""
    after = None if filters.created_after is None else sortable_time(filters.created_after)
    before = None if filters.created_before is None else sortable_time(filters.created_before)
    return after, before


def is_empty_range(filters: JobFilter) -> bool:
    after, before = created_range(filters)
    return after is not None and before is not None and after >= before


def list_jobs_query(
    table_name: str,
    org_id: str,
    filters: JobFilter,
    *,
    limit: int,
    start_key: Mapping[str, AttributeValueTypeDef] | None,
) -> QueryInputTypeDef:
    """One Query of the organization's jobs on GSI1, newest first, reading at most `limit`
    index items (more when a filter expression may drop some).

    A job created at exactly `created_before` is left out by BETWEEN too: its sort key
    `<created_before>#<job_id>` sorts after the bound.
    """
    names: dict[str, str] = {"#pk": "GSI1PK"}
    values: dict[str, AttributeValueTypeDef] = {":org": _s(org_partition(org_id))}
    key_condition = "#pk = :org"
    after, before = created_range(filters)
    if after is not None or before is not None:
        names["#sk"] = "GSI1SK"
    if after is not None and before is not None:
        key_condition += " AND #sk BETWEEN :after AND :before"
        values[":after"], values[":before"] = _s(after), _s(before)
    elif after is not None:
        key_condition += " AND #sk >= :after"
        values[":after"] = _s(after)
    elif before is not None:
        key_condition += " AND #sk < :before"
        values[":before"] = _s(before)

    conditions: list[str] = []
    for attribute, value in (
        ("status", filters.status),
        ("method", filters.method),
        ("base_model", filters.base_model),
    ):
        if value is not None:
            names[f"#{attribute}"] = attribute
            values[f":{attribute}"] = _s(str(value))
            conditions.append(f"#{attribute} = :{attribute}")

    query: QueryInputTypeDef = {
        "TableName": table_name,
        "IndexName": INDEX_NAME,
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": False,
        "Limit": max(limit, FILTERED_READ_SIZE) if conditions else limit,
    }
    if conditions:
        query["FilterExpression"] = " AND ".join(conditions)
    if start_key is not None:
        query["ExclusiveStartKey"] = start_key
    return query


def index_key(item: Mapping[str, AttributeValueTypeDef]) -> Item:
    """The GSI1 position of a job item: what LastEvaluatedKey holds after it."""
    return {name: _s(item[name]["S"]) for name in _KEY_ATTRIBUTES}


def encode_cursor(key: Mapping[str, AttributeValueTypeDef]) -> str:
    """An opaque, URL-safe cursor: base64 of the index key as JSON."""
    text = json.dumps({name: key[name]["S"] for name in _KEY_ATTRIBUTES}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, org_id: str) -> Item:
    """The index key a cursor holds; InvalidInputError unless it is one of this org's."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise _invalid_cursor() from error
    if (
        not isinstance(data, dict)
        or set(data) != set(_KEY_ATTRIBUTES)
        or not all(isinstance(value, str) for value in data.values())
        or data["GSI1PK"] != org_partition(org_id)
    ):
        raise _invalid_cursor()
    return {name: _s(data[name]) for name in _KEY_ATTRIBUTES}


def _invalid_cursor() -> InvalidInputError:
    return InvalidInputError(
        "the cursor is not one this listing returned; list again without a cursor",
        code="invalid_cursor",
    )


def metric_sort_key(name: str, step: int) -> str:
    if not 0 <= step <= MAX_STEP:
        raise ValueError(f"metric step {step} is outside 0..{MAX_STEP}")
    return f"{METRIC_PREFIX}{name}#{step:0{STEP_DIGITS}d}"


def metric_item(job_id: str, point: MetricPoint) -> Item:
    return {
        "PK": _s(f"JOB#{job_id}"),
        "SK": _s(metric_sort_key(point.name, point.step)),
        "metric_name": _s(point.name),
        "step": {"N": str(point.step)},
        "value": _s(repr(point.value)),
        "time": _s(point.time.isoformat()),
    }


def point_from_item(item: Mapping[str, AttributeValueTypeDef]) -> MetricPoint:
    return MetricPoint(
        name=item["metric_name"]["S"],
        step=int(item["step"]["N"]),
        value=float(item["value"]["S"]),
        time=datetime.fromisoformat(item["time"]["S"]),
    )


def put_metric_requests(job_id: str, points: Sequence[MetricPoint]) -> list[WriteRequestTypeDef]:
    """PutRequests of the points; of two points at one (name, step) the later one wins, as
    a BatchWriteItem may not name one key twice."""
    latest = {(point.name, point.step): point for point in points}
    return [{"PutRequest": {"Item": metric_item(job_id, point)}} for point in latest.values()]


def metric_queries(
    table_name: str,
    job_id: str,
    *,
    names: Sequence[str] | None,
    min_step: int | None,
    max_step: int | None,
) -> list[QueryInputTypeDef]:
    """The Queries of a job's metric points: one per name with the step range as BETWEEN
    on the sort key, or one over every name with the range as a filter on `step`."""
    low = max(min_step or 0, 0)
    high = MAX_STEP if max_step is None else min(max_step, MAX_STEP)
    if low > high:
        return []
    partition = _s(f"JOB#{job_id}")
    if names is None:
        return [
            {
                "TableName": table_name,
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
                "FilterExpression": "#step BETWEEN :low AND :high",
                "ExpressionAttributeNames": {"#step": "step"},
                "ExpressionAttributeValues": {
                    ":pk": partition,
                    ":prefix": _s(METRIC_PREFIX),
                    ":low": {"N": str(low)},
                    ":high": {"N": str(high)},
                },
            }
        ]
    # The filter on the name keeps out a series whose name extends this one with
    # '#<digits>': its sort keys fall inside the BETWEEN bounds.
    return [
        {
            "TableName": table_name,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :low AND :high",
            "FilterExpression": "metric_name = :name",
            "ExpressionAttributeValues": {
                ":pk": partition,
                ":low": _s(metric_sort_key(name, low)),
                ":high": _s(metric_sort_key(name, high)),
                ":name": _s(name),
            },
        }
        for name in dict.fromkeys(names)
    ]


def next_metric_name_query(table_name: str, job_id: str, after: str | None) -> QueryInputTypeDef:
    """The first metric item of the series after `after` (or of the first series): one item
    read, starting past the last sort key `after` can have."""
    query: QueryInputTypeDef = {
        "TableName": table_name,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
        "ProjectionExpression": "metric_name",
        "ExpressionAttributeValues": {
            ":pk": _s(f"JOB#{job_id}"),
            ":prefix": _s(METRIC_PREFIX),
        },
        "Limit": 1,
    }
    if after is not None:
        query["ExclusiveStartKey"] = {
            "PK": _s(f"JOB#{job_id}"),
            "SK": _s(metric_sort_key(after, MAX_STEP)),
        }
    return query


def unfinished_jobs_scan(table_name: str) -> ScanInputTypeDef:
    """Job items not in a terminal status. A Scan: the reconciler runs it every few
    minutes, and the table holds one item per job plus its metric points."""
    ended = sorted(status.value for status in TERMINAL_STATUSES)
    return {
        "TableName": table_name,
        "FilterExpression": "SK = :job AND NOT #status IN ("
        + ", ".join(f":s{i}" for i in range(len(ended)))
        + ")",
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": {
            ":job": _s(JOB_SK),
            **{f":s{i}": _s(value) for i, value in enumerate(ended)},
        },
    }


def job_partition_keys_query(table_name: str, job_id: str) -> QueryInputTypeDef:
    """The keys of every item in the job's partition (the job and its metrics)."""
    return {
        "TableName": table_name,
        "KeyConditionExpression": "PK = :pk",
        "ProjectionExpression": "PK, SK",
        "ExpressionAttributeValues": {":pk": _s(f"JOB#{job_id}")},
        "ConsistentRead": True,
    }


def delete_requests(
    keys: Sequence[Mapping[str, AttributeValueTypeDef]],
) -> list[WriteRequestTypeDef]:
    return [{"DeleteRequest": {"Key": {"PK": key["PK"], "SK": key["SK"]}}} for key in keys]


def chunks(requests: Sequence[WriteRequestTypeDef]) -> Iterator[list[WriteRequestTypeDef]]:
    for start in range(0, len(requests), BATCH_WRITE_SIZE):
        yield list(requests[start : start + BATCH_WRITE_SIZE])
