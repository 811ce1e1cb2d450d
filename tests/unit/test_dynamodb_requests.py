"""The DynamoDB job store's requests, built without any I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.jobs import T0, make_job

from whetstone.adapters.aws.dynamodb_requests import (
    FILTERED_READ_SIZE,
    Item,
    chunks,
    create_job_requests,
    decode_cursor,
    delete_requests,
    encode_cursor,
    index_key,
    job_item,
    list_jobs_query,
    metric_queries,
    metric_sort_key,
    put_metric_requests,
    record_from_item,
    save_job_request,
    sortable_time,
    table_definition,
)
from whetstone.core.errors import InvalidInputError
from whetstone.core.job import JobFilter, MetricPoint
from whetstone.core.lifecycle import JobStatus
from whetstone.core.spec import Method

TABLE = "jobs"


def test_the_table_has_string_keys_one_index_and_on_demand_billing() -> None:
    definition = table_definition("t")

    assert definition["TableName"] == "t"
    assert definition["BillingMode"] == "PAY_PER_REQUEST"
    assert [(k["AttributeName"], k["KeyType"]) for k in definition["KeySchema"]] == [
        ("PK", "HASH"),
        ("SK", "RANGE"),
    ]
    (index,) = definition["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "GSI1"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["GSI1PK", "GSI1SK"]
    assert {a["AttributeType"] for a in definition["AttributeDefinitions"]} == {"S"}


def test_a_job_item_holds_the_record_and_its_indexed_attributes() -> None:
    job = make_job("org-a", method=Method.QLORA, status=JobStatus.TRAINING)

    item = job_item(job)

    assert item["PK"] == {"S": f"JOB#{job.job_id}"} and item["SK"] == {"S": "JOB"}
    assert item["GSI1PK"] == {"S": "ORG#org-a"}
    assert item["GSI1SK"] == {"S": f"2025-03-01T12:00:00.000000Z#{job.job_id}"}
    assert item["status"] == {"S": "training"} and item["method"] == {"S": "qlora"}
    assert item["base_model"] == {"S": "llama-3.1-8b-instruct"}
    assert item["version"] == {"N": "0"}
    assert record_from_item(item) == job


def test_sortable_time_takes_a_naive_time_as_utc_and_converts_offsets() -> None:
    plus_two = timezone(timedelta(hours=2))

    assert sortable_time(datetime(2025, 3, 1, 12)) == "2025-03-01T12:00:00.000000Z"
    assert sortable_time(datetime(2025, 3, 1, 14, tzinfo=plus_two)) == (
        "2025-03-01T12:00:00.000000Z"
    )


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC)),
    st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC)),
)
def test_sortable_time_orders_as_text_like_the_times(first: datetime, second: datetime) -> None:
    assert (sortable_time(first) < sortable_time(second)) == (first < second)


def test_create_without_an_idempotency_key_is_one_conditional_put() -> None:
    (put,) = create_job_requests(TABLE, make_job())

    assert put["Put"]["ConditionExpression"] == "attribute_not_exists(PK)"


def test_create_with_an_idempotency_key_also_claims_the_key() -> None:
    job = make_job("org-a", idempotency_key="k-1")

    _, claim = create_job_requests(TABLE, job)

    assert claim["Put"]["Item"] == {
        "PK": {"S": "ORG#org-a"},
        "SK": {"S": "IDEMPOTENCY#k-1"},
        "job_id": {"S": job.job_id},
    }
    assert claim["Put"]["ConditionExpression"] == "attribute_not_exists(PK)"


def test_save_is_conditional_on_the_expected_version() -> None:
    job = make_job().model_copy(update={"version": 4})

    request = save_job_request(TABLE, job, expected_version=3)

    assert request["ConditionExpression"] == "attribute_exists(PK) AND #version = :expected"
    assert request["ExpressionAttributeValues"] == {":expected": {"N": "3"}}
    assert request["Item"]["version"] == {"N": "4"}


def test_an_unfiltered_listing_reads_exactly_the_limit_newest_first() -> None:
    query = list_jobs_query(TABLE, "org-a", JobFilter(), limit=7, start_key=None)

    assert query["IndexName"] == "GSI1" and query["ScanIndexForward"] is False
    assert query["KeyConditionExpression"] == "#pk = :org"
    assert query["Limit"] == 7
    assert "FilterExpression" not in query and "ExclusiveStartKey" not in query


@pytest.mark.parametrize(
    ("filters", "condition"),
    [
        (JobFilter(created_after=T0), "#pk = :org AND #sk >= :after"),
        (JobFilter(created_before=T0), "#pk = :org AND #sk < :before"),
        (
            JobFilter(created_after=T0, created_before=T0 + timedelta(days=1)),
            "#pk = :org AND #sk BETWEEN :after AND :before",
        ),
    ],
)
def test_the_created_range_is_a_key_condition(filters: JobFilter, condition: str) -> None:
    query = list_jobs_query(TABLE, "org-a", filters, limit=7, start_key=None)

    assert query["KeyConditionExpression"] == condition
    assert query["ExpressionAttributeNames"]["#sk"] == "GSI1SK"
    assert "FilterExpression" not in query


def test_status_method_and_base_model_are_filter_expressions() -> None:
    filters = JobFilter(status=JobStatus.FAILED, method=Method.FULL, base_model="m")

    query = list_jobs_query(TABLE, "org-a", filters, limit=7, start_key=None)

    assert query["FilterExpression"] == (
        "#status = :status AND #method = :method AND #base_model = :base_model"
    )
    values = query["ExpressionAttributeValues"]
    assert values[":status"] == {"S": "failed"} and values[":method"] == {"S": "full"}
    assert values[":base_model"] == {"S": "m"}
    assert query["Limit"] == FILTERED_READ_SIZE


def test_a_cursor_round_trips_to_the_start_key() -> None:
    key = index_key(job_item(make_job("org-a")))

    cursor = encode_cursor(key)

    assert decode_cursor(cursor, "org-a") == key
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor
    assert (
        list_jobs_query(TABLE, "org-a", JobFilter(), limit=1, start_key=key)["ExclusiveStartKey"]
        == key
    )


@pytest.mark.parametrize(
    "cursor",
    ["", "%%%", "bm90IGpzb24", "W10", "eyJQSyI6IDF9"],
)
def test_a_malformed_cursor_is_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInputError):
        decode_cursor(cursor, "org-a")


def test_a_cursor_of_another_organization_is_invalid_input() -> None:
    cursor = encode_cursor(index_key(job_item(make_job("org-b"))))

    with pytest.raises(InvalidInputError):
        decode_cursor(cursor, "org-a")


def test_metric_sort_keys_are_zero_padded_so_steps_sort_as_text() -> None:
    assert metric_sort_key("loss", 42) == "METRIC#loss#0000000042"
    assert metric_sort_key("loss", 9) < metric_sort_key("loss", 10)
    with pytest.raises(ValueError):
        metric_sort_key("loss", 10**10)


def test_metrics_of_named_series_are_one_between_query_per_name() -> None:
    queries = metric_queries(TABLE, "j", names=["loss", "lr", "loss"], min_step=5, max_step=9)

    assert [q["ExpressionAttributeValues"][":name"] for q in queries] == [
        {"S": "loss"},
        {"S": "lr"},
    ]
    first = queries[0]
    assert first["KeyConditionExpression"] == "PK = :pk AND SK BETWEEN :low AND :high"
    assert first["ExpressionAttributeValues"][":low"] == {"S": "METRIC#loss#0000000005"}
    assert first["ExpressionAttributeValues"][":high"] == {"S": "METRIC#loss#0000000009"}


def test_metrics_of_every_series_filter_the_steps() -> None:
    (query,) = metric_queries(TABLE, "j", names=None, min_step=None, max_step=100)

    assert query["KeyConditionExpression"] == "PK = :pk AND begins_with(SK, :prefix)"
    assert query["FilterExpression"] == "#step BETWEEN :low AND :high"
    assert query["ExpressionAttributeValues"][":low"] == {"N": "0"}
    assert query["ExpressionAttributeValues"][":high"] == {"N": "100"}


def test_an_empty_step_range_or_no_names_needs_no_query() -> None:
    assert metric_queries(TABLE, "j", names=None, min_step=9, max_step=5) == []
    assert metric_queries(TABLE, "j", names=[], min_step=None, max_step=None) == []


def test_two_points_at_one_step_in_a_batch_keep_the_later() -> None:
    early = MetricPoint(name="loss", step=1, value=1.0, time=T0)
    late = MetricPoint(name="loss", step=1, value=0.5, time=T0)

    (request,) = put_metric_requests("j", [early, late])

    assert request["PutRequest"]["Item"]["value"] == {"S": "0.5"}


def test_batch_writes_are_chunked_by_25() -> None:
    keys: list[Item] = [{"PK": {"S": "p"}, "SK": {"S": str(i)}} for i in range(60)]

    sizes = [len(chunk) for chunk in chunks(delete_requests(keys))]

    assert sizes == [25, 25, 10]


def test_a_record_is_stored_as_json() -> None:
    job = make_job()

    assert json.loads(job_item(job)["record"]["S"])["job_id"] == job.job_id
