"""The aws JobStore (DynamoDB) and LogStore (CloudWatch Logs) against moto."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from mypy_boto3_dynamodb.client import DynamoDBClient
from mypy_boto3_logs.client import CloudWatchLogsClient
from support.jobs import T0, assert_the_second_of_two_saves_from_one_version_is_stale, make_job

from whetstone.adapters.aws import cloudwatch_logs
from whetstone.adapters.aws.cloudwatch_logs import CloudWatchLogStore
from whetstone.adapters.aws.dynamodb_jobs import DynamoDBJobStore
from whetstone.adapters.aws.dynamodb_requests import table_definition
from whetstone.core.errors import ConflictError, InvalidInputError, StaleWriteError
from whetstone.core.job import JobFilter, JobRecord, LogEntry, LogLevelName, LogSource, MetricPoint
from whetstone.core.lifecycle import JobStatus
from whetstone.core.logs import LogQuery
from whetstone.core.quota import ActiveLimits, ActiveUsage
from whetstone.core.spec import HardwareParams, Method

TABLE = "whetstone-test"
LOG_GROUP = "/whetstone/test/jobs"
# CloudWatch (and moto) reject events older than 14 days: log lines are recent.
LOG_T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def dynamodb() -> DynamoDBClient:
    client = boto3.client("dynamodb")
    client.create_table(**table_definition(TABLE))
    return client


@pytest.fixture
def store(dynamodb: DynamoDBClient) -> DynamoDBJobStore:
    return DynamoDBJobStore(TABLE, dynamodb)


@pytest.fixture
def logs_client() -> CloudWatchLogsClient:
    client = boto3.client("logs")
    client.create_log_group(logGroupName=LOG_GROUP)
    return client


@pytest.fixture
def logs(logs_client: CloudWatchLogsClient) -> CloudWatchLogStore:
    return CloudWatchLogStore(LOG_GROUP, logs_client)


def all_items(client: DynamoDBClient) -> list[dict[str, Any]]:
    return list(client.scan(TableName=TABLE, ConsistentRead=True)["Items"])


def list_all(
    store: DynamoDBJobStore, org_id: str, filters: JobFilter, limit: int
) -> list[list[JobRecord]]:
    pages: list[list[JobRecord]] = []
    cursor: str | None = None
    while True:
        page, cursor = store.list_jobs(org_id, filters, limit=limit, cursor=cursor)
        pages.append(page)
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor never ends"


# --- jobs -------------------------------------------------------------------------


def test_create_then_get_returns_the_same_record(store: DynamoDBJobStore) -> None:
    job = make_job()

    store.create(job)

    assert store.get(job.job_id) == job


def test_get_of_an_unknown_job_is_none(store: DynamoDBJobStore) -> None:
    assert store.get("ftjob-missing") is None


def test_creating_the_same_job_twice_raises_conflict(store: DynamoDBJobStore) -> None:
    job = make_job()
    store.create(job)

    with pytest.raises(ConflictError) as raised:
        store.create(job.model_copy(update={"name": "again"}))

    assert raised.value.code == "job_exists"
    assert store.get(job.job_id) == job


def test_a_used_idempotency_key_raises_conflict_and_stores_nothing(
    store: DynamoDBJobStore,
) -> None:
    first = make_job(idempotency_key="key-1")
    second = make_job(idempotency_key="key-1")
    store.create(first)

    with pytest.raises(ConflictError) as raised:
        store.create(second)

    assert raised.value.code == "idempotency_key_in_use"
    assert store.get(second.job_id) is None
    assert store.find_by_idempotency_key("org-a", "key-1") == first


def test_an_idempotency_key_is_per_organization(store: DynamoDBJobStore) -> None:
    job_a = make_job("org-a", idempotency_key="key-1")
    job_b = make_job("org-b", idempotency_key="key-1")

    store.create(job_a)
    store.create(job_b)

    assert store.find_by_idempotency_key("org-a", "key-1") == job_a
    assert store.find_by_idempotency_key("org-b", "key-1") == job_b
    assert store.find_by_idempotency_key("org-c", "key-1") is None
    assert store.find_by_idempotency_key("org-a", "key-2") is None


def test_save_writes_the_job_at_the_next_version(store: DynamoDBJobStore) -> None:
    job = make_job()
    store.create(job)

    saved = store.save(job.with_status(JobStatus.PREPARING), expected_version=0)

    assert saved.version == 1 and saved.status is JobStatus.PREPARING
    assert store.get(job.job_id) == saved


def test_two_saves_from_the_same_version_the_second_is_stale(store: DynamoDBJobStore) -> None:
    assert_the_second_of_two_saves_from_one_version_is_stale(store)


def test_saving_a_job_that_does_not_exist_is_stale(store: DynamoDBJobStore) -> None:
    with pytest.raises(StaleWriteError):
        store.save(make_job(), expected_version=0)


def test_listing_pages_newest_first_without_duplicates_within_the_org(
    store: DynamoDBJobStore,
) -> None:
    jobs = [
        make_job("org-a" if i % 3 else "org-b", created_at=T0 + timedelta(minutes=i))
        for i in range(25)
    ]
    for job in jobs:
        store.create(job)
    expected = sorted(
        (job for job in jobs if job.org_id == "org-a"), key=lambda job: job.created_at, reverse=True
    )

    pages = list_all(store, "org-a", JobFilter(), limit=7)

    assert [len(page) for page in pages[:-1]] == [7] * (len(pages) - 1)
    assert [job.job_id for page in pages for job in page] == [job.job_id for job in expected]


def test_filtered_listing_fills_each_page_up_to_the_limit(store: DynamoDBJobStore) -> None:
    jobs = []
    for i in range(25):
        method = Method.QLORA if i % 2 else Method.LORA
        status = JobStatus.FAILED if i % 5 == 0 else JobStatus.PENDING
        org_id = "org-b" if i % 4 == 0 else "org-a"
        jobs.append(
            make_job(org_id, created_at=T0 + timedelta(hours=i), method=method, status=status)
        )
    for job in jobs:
        store.create(job)
    filters = JobFilter(method=Method.QLORA, status=JobStatus.PENDING)
    expected = sorted(
        (job for job in jobs if job.org_id == "org-a" and filters.matches(job)),
        key=lambda job: job.created_at,
        reverse=True,
    )

    pages = list_all(store, "org-a", filters, limit=3)

    assert len(expected) > 3
    assert [len(page) for page in pages[:-1]] == [3] * (len(pages) - 1)
    assert [job.job_id for page in pages for job in page] == [job.job_id for job in expected]


def test_listing_by_base_model(store: DynamoDBJobStore) -> None:
    llama = make_job(created_at=T0)
    mistral = make_job(created_at=T0 + timedelta(seconds=1), base_model="mistral-7b-instruct-v0.3")
    store.create(llama)
    store.create(mistral)

    page, cursor = store.list_jobs(
        "org-a", JobFilter(base_model="mistral-7b-instruct-v0.3"), limit=10, cursor=None
    )

    assert page == [mistral] and cursor is None


def test_created_range_includes_its_start_and_excludes_its_end(store: DynamoDBJobStore) -> None:
    jobs = [make_job(created_at=T0 + timedelta(hours=i)) for i in range(6)]
    for job in jobs:
        store.create(job)

    def listed(filters: JobFilter) -> list[JobRecord]:
        return [job for page in list_all(store, "org-a", filters, limit=2) for job in page]

    start, end = T0 + timedelta(hours=1), T0 + timedelta(hours=4)
    assert listed(JobFilter(created_after=start, created_before=end)) == jobs[1:4][::-1]
    assert listed(JobFilter(created_after=start)) == jobs[1:][::-1]
    assert listed(JobFilter(created_before=end)) == jobs[:4][::-1]
    assert listed(JobFilter(created_after=end, created_before=start)) == []


def test_a_cursor_of_another_organization_is_rejected(store: DynamoDBJobStore) -> None:
    for i in range(3):
        store.create(make_job("org-b", created_at=T0 + timedelta(seconds=i)))
    _, cursor = store.list_jobs("org-b", JobFilter(), limit=1, cursor=None)
    assert cursor is not None

    with pytest.raises(InvalidInputError):
        store.list_jobs("org-a", JobFilter(), limit=1, cursor=cursor)
    with pytest.raises(InvalidInputError):
        store.list_jobs("org-a", JobFilter(), limit=1, cursor="not a cursor")


# --- metrics ----------------------------------------------------------------------


def points(name: str, steps: range, offset: float = 0.0) -> list[MetricPoint]:
    return [
        MetricPoint(
            name=name, step=step, value=step / 10 + offset, time=T0 + timedelta(seconds=step)
        )
        for step in steps
    ]


def test_metrics_come_back_by_name_then_step_within_the_step_range(
    store: DynamoDBJobStore,
) -> None:
    store.put_metrics(
        "job-1", [*points("loss", range(0, 60)), *points("eval_loss", range(0, 60, 10))]
    )
    store.put_metrics("job-2", points("loss", range(0, 60)))

    loss = store.query_metrics("job-1", names=["loss"], min_step=10, max_step=19)
    every = store.query_metrics("job-1", names=None, min_step=None, max_step=None)
    both = store.query_metrics("job-1", names=["loss", "eval_loss"], min_step=50, max_step=None)

    assert [p.step for p in loss] == list(range(10, 20))
    assert [(p.name, p.step) for p in every] == [("eval_loss", s) for s in range(0, 60, 10)] + [
        ("loss", s) for s in range(60)
    ]
    assert [(p.name, p.step) for p in both] == [("eval_loss", 50)] + [
        ("loss", s) for s in range(50, 60)
    ]


def test_a_point_at_an_existing_step_replaces_it(store: DynamoDBJobStore) -> None:
    store.put_metrics("job-1", points("loss", range(5)))

    store.put_metrics("job-1", points("loss", range(3, 4), offset=100.0))

    values = {
        p.step: p.value
        for p in store.query_metrics("job-1", names=["loss"], min_step=None, max_step=None)
    }
    assert values[3] == pytest.approx(100.3) and len(values) == 5


def test_a_series_is_not_mixed_with_a_longer_name(store: DynamoDBJobStore) -> None:
    store.put_metrics("job-1", [*points("gpu", range(3)), *points("gpu#1", range(3))])

    gpu = store.query_metrics("job-1", names=["gpu"], min_step=None, max_step=None)

    assert {p.name for p in gpu} == {"gpu"} and len(gpu) == 3


def test_non_finite_metric_values_survive(store: DynamoDBJobStore) -> None:
    nan = MetricPoint(name="grad_norm", step=1, value=float("nan"), time=T0)
    inf = MetricPoint(name="grad_norm", step=2, value=float("inf"), time=T0)
    store.put_metrics("job-1", [nan, inf])

    got = store.query_metrics("job-1", names=["grad_norm"], min_step=None, max_step=None)

    assert got[0].value != got[0].value and got[1].value == float("inf")


class _HalfProcessing:
    """A client whose first BatchWriteItem leaves its last request unprocessed."""

    def __init__(self, client: DynamoDBClient) -> None:
        self._client = client
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        if self.calls > 1:
            return dict(self._client.batch_write_item(RequestItems=RequestItems))
        ((table, requests),) = RequestItems.items()
        self._client.batch_write_item(RequestItems={table: requests[:-1]})
        return {"UnprocessedItems": {table: requests[-1:]}}


def test_unprocessed_items_are_written_again(dynamodb: DynamoDBClient) -> None:
    client = _HalfProcessing(dynamodb)
    store = DynamoDBJobStore(TABLE, client, sleep=lambda _: None)  # type: ignore[arg-type]

    store.put_metrics("job-1", points("loss", range(10)))

    assert client.calls == 2
    assert len(store.query_metrics("job-1", names=None, min_step=None, max_step=None)) == 10


# --- delete -----------------------------------------------------------------------


def test_delete_leaves_no_item_of_the_job(
    store: DynamoDBJobStore, dynamodb: DynamoDBClient
) -> None:
    doomed = make_job(idempotency_key="key-1")
    kept = make_job(idempotency_key="key-2", created_at=T0 + timedelta(seconds=1))
    for job in (doomed, kept):
        store.create(job)
        store.put_metrics(job.job_id, [*points("loss", range(40)), *points("lr", range(40))])

    store.delete(doomed.job_id)

    remaining = all_items(dynamodb)
    assert not [item for item in remaining if doomed.job_id in str(item) or "key-1" in str(item)]
    assert len(remaining) == 1 + 1 + 80
    assert store.get(doomed.job_id) is None
    assert store.find_by_idempotency_key("org-a", "key-1") is None
    assert store.find_by_idempotency_key("org-a", "key-2") == kept
    store.create(make_job(idempotency_key="key-1"))


def test_deleting_an_unknown_job_does_nothing(store: DynamoDBJobStore) -> None:
    store.delete("ftjob-missing")


# --- logs -------------------------------------------------------------------------


def entry(
    seconds: float,
    source: LogSource = "training",
    level: LogLevelName = "info",
    message: str | None = None,
) -> LogEntry:
    return LogEntry(
        time=LOG_T0 + timedelta(seconds=seconds),
        source=source,
        level=level,
        message=message or f"line at {seconds}",
        fields={"seconds": seconds},
    )


def query_all(
    logs: CloudWatchLogStore,
    job_id: str,
    *,
    limit: int,
    source: LogSource | None = None,
    min_level: LogLevelName = "debug",
) -> list[list[LogEntry]]:
    pages: list[list[LogEntry]] = []
    cursor: str | None = None
    while True:
        page, cursor = logs.query(
            job_id, LogQuery(source=source, min_level=min_level, limit=limit, cursor=cursor)
        )
        pages.append(page)
        if cursor is None:
            return pages
        assert len(pages) < 100, "the cursor never ends"


def test_logs_come_back_oldest_first_across_sources(logs: CloudWatchLogStore) -> None:
    entries = [entry(3, "training"), entry(1, "build"), entry(2.0005, "deployment"), entry(2)]

    logs.append("job-1", entries)
    logs.append("job-1", [entry(0.5, "build")])
    page, cursor = logs.query("job-1", LogQuery(limit=100))

    assert page == sorted([*entries, entry(0.5, "build")], key=lambda e: e.time)
    assert cursor is None


def test_logs_of_another_job_are_never_returned(logs: CloudWatchLogStore) -> None:
    logs.append("job-1", [entry(1)])
    logs.append("job-10", [entry(2)])

    page, _ = logs.query("job-1", LogQuery(limit=10))

    assert page == [entry(1)]


def test_the_level_filter_keeps_that_level_and_above(logs: CloudWatchLogStore) -> None:
    levels: list[LogLevelName] = ["debug", "info", "warning", "error", "critical"]
    logs.append("job-1", [entry(i, level=level) for i, level in enumerate(levels)])

    page, _ = logs.query("job-1", LogQuery(min_level="warning", limit=10))

    assert [e.level for e in page] == ["warning", "error", "critical"]


def test_the_source_filter_reads_one_stream(logs: CloudWatchLogStore) -> None:
    logs.append("job-1", [entry(1, "build"), entry(2, "training"), entry(3, "build")])

    build, _ = logs.query("job-1", LogQuery(source="build", limit=10))
    deployment, cursor = logs.query("job-1", LogQuery(source="deployment", limit=10))

    assert build == [entry(1, "build"), entry(3, "build")]
    assert deployment == [] and cursor is None


def test_the_time_range_includes_its_start_and_excludes_its_end(
    logs: CloudWatchLogStore,
) -> None:
    logs.append("job-1", [entry(s) for s in (1, 1.0004, 2, 2.9996, 3, 4)])

    page, _ = logs.query(
        "job-1",
        LogQuery(
            start=LOG_T0 + timedelta(seconds=1.0004), end=LOG_T0 + timedelta(seconds=3), limit=10
        ),
    )

    assert page == [entry(1.0004), entry(2), entry(2.9996)]


@pytest.mark.parametrize("filter_page_size", [1000, 4])
def test_pages_hold_exactly_the_limit_and_cover_every_entry_once(
    logs: CloudWatchLogStore, monkeypatch: pytest.MonkeyPatch, filter_page_size: int
) -> None:
    monkeypatch.setattr(cloudwatch_logs, "FILTER_PAGE_SIZE", filter_page_size)
    sources: list[LogSource] = ["build", "deployment", "training"]
    levels: list[LogLevelName] = ["debug", "info", "error"]
    entries = [entry(i, sources[i % 3], levels[i % 2 * 2]) for i in range(31)]
    logs.append("job-1", entries)
    logs.append("job-2", entries)

    pages = query_all(logs, "job-1", limit=5, min_level="error")

    expected = [e for e in entries if e.level == "error"]
    assert [len(page) for page in pages[:-1]] == [5] * (len(pages) - 1)
    assert [e for page in pages for e in page] == expected


def test_a_job_without_logs_has_an_empty_page(logs: CloudWatchLogStore) -> None:
    assert query_all(logs, "job-1", limit=5) == [[]]
    assert query_all(logs, "job-1", limit=5, source="build") == [[]]


def test_a_bad_log_cursor_is_rejected(logs: CloudWatchLogStore) -> None:
    with pytest.raises(InvalidInputError):
        logs.query("job-1", LogQuery(limit=5, cursor="%%%"))


def test_delete_removes_the_job_streams_only(
    logs: CloudWatchLogStore, logs_client: CloudWatchLogsClient
) -> None:
    logs.append("job-1", [entry(1, "build"), entry(2, "training")])
    logs.append("job-2", [entry(1, "build")])

    logs.delete("job-1")

    streams = logs_client.describe_log_streams(logGroupName=LOG_GROUP)["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["job-2/build"]
    assert query_all(logs, "job-1", limit=5) == [[]]


def test_unfinished_jobs_of_every_organization_are_listed(store: DynamoDBJobStore) -> None:
    running = make_job("org-a", status=JobStatus.TRAINING)
    pending = make_job("org-b", created_at=T0 + timedelta(seconds=1))
    done = make_job("org-a", status=JobStatus.COMPLETED)
    for job in (running, pending, done):
        store.create(job)

    assert [job.job_id for job in store.list_unfinished()] == [running.job_id, pending.job_id]


def test_the_first_counted_create_counts_the_jobs_stored_before_the_counter(
    store: DynamoDBJobStore,
) -> None:
    # Given two jobs not ended and one ended, stored before the organization had a counter
    store.create(make_job())
    store.create(make_job(hardware=HardwareParams(gpu_count=2)))
    store.create(make_job(status=JobStatus.COMPLETED))

    # When the quota is read, then they are counted once, and a create adds to the count
    assert store.active_usage("org-a") == ActiveUsage(jobs=2, gpus=3)
    store.create(make_job(), limits=ActiveLimits(max_jobs=3, max_gpus=16))
    assert store.active_usage("org-a") == ActiveUsage(jobs=3, gpus=4)


def test_deleting_a_job_not_ended_gives_its_quota_slot_back(store: DynamoDBJobStore) -> None:
    job = make_job()
    store.create(job, limits=ActiveLimits(max_jobs=1, max_gpus=16))

    store.delete(job.job_id)

    assert store.active_usage("org-a") == ActiveUsage()
