"""What every job and log store shares about bounded work, for the local stores (SQLite,
files) and the aws ones (DynamoDB, CloudWatch Logs on moto): the atomic quota, capped
metric reads, and listings and log queries that read a budget per call."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from support.jobs import T0, make_job

from whetstone.adapters.aws import cloudwatch_logs, dynamodb_requests
from whetstone.adapters.aws.dynamodb_jobs import DynamoDBJobStore
from whetstone.adapters.local import file_logs, sqlite_jobs
from whetstone.adapters.local.file_logs import FileLogStore
from whetstone.adapters.local.sqlite_jobs import SQLiteJobStore
from whetstone.core.errors import QuotaExceededError
from whetstone.core.job import JobFilter, LogEntry, MetricPoint
from whetstone.core.lifecycle import JobStatus
from whetstone.core.logs import LogQuery
from whetstone.core.quota import ActiveLimits, ActiveUsage
from whetstone.core.spec import HardwareParams
from whetstone.ports import JobStore, LogStore

ROOMY_GPUS = 100
BUDGET = 5
# CloudWatch (and moto) reject events older than 14 days: log lines are recent.
LOG_T0 = datetime.now(T0.tzinfo).replace(microsecond=0) - timedelta(hours=1)


class OneRequestAtATime:
    """A DynamoDB client whose requests each apply atomically, as DynamoDB's do; moto
    checks a condition and writes without a lock, so threads could interleave inside one
    request. Threads still interleave between the store's requests."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.exceptions = client.exceptions

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return call


@pytest.fixture(params=["local", "aws"])
def runtime_kind(request: pytest.FixtureRequest) -> str:
    return cast("str", request.param)


@pytest.fixture
def job_store(
    runtime_kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> JobStore:
    if runtime_kind == "local":
        monkeypatch.setattr(sqlite_jobs, "LIST_READ_BUDGET", BUDGET)
        return SQLiteJobStore(tmp_path / "jobs.sqlite3")
    table = request.getfixturevalue("aws_platform").settings.table_name
    monkeypatch.setattr(dynamodb_requests, "LIST_READ_BUDGET", BUDGET)
    return DynamoDBJobStore(table, cast("Any", OneRequestAtATime(boto3.client("dynamodb"))))


@pytest.fixture
def log_store(
    runtime_kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> LogStore:
    if runtime_kind == "local":
        monkeypatch.setattr(file_logs, "READ_BUDGET", 4)
        return FileLogStore(tmp_path / "logs")
    monkeypatch.setattr(cloudwatch_logs, "FILTER_PAGE_SIZE", 4)
    monkeypatch.setattr(cloudwatch_logs, "MAX_FILTER_CALLS", 2)
    logs: LogStore = request.getfixturevalue("aws_platform").logs
    return logs


def test_concurrent_creates_never_pass_the_job_quota(job_store: JobStore) -> None:
    # Given a quota of 3 jobs
    attempts, quota = 8, 3
    limits = ActiveLimits(max_jobs=quota, max_gpus=ROOMY_GPUS)
    start = threading.Barrier(attempts)
    outcomes: list[str] = []

    def create() -> None:
        job = make_job()
        start.wait()
        try:
            job_store.create(job, limits=limits)
        except QuotaExceededError as error:
            outcomes.append(error.code)
        else:
            outcomes.append("created")

    # When 8 threads create at once
    threads = [threading.Thread(target=create) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then exactly 3 are stored and the others refused
    assert sorted(outcomes) == ["created"] * quota + ["quota_jobs"] * (attempts - quota)
    assert job_store.active_usage("org-a").jobs == quota


def test_an_ended_job_gives_its_quota_slot_back_once(job_store: JobStore) -> None:
    # Given a full quota
    limits = ActiveLimits(max_jobs=2, max_gpus=ROOMY_GPUS)
    gpus = HardwareParams(gpu_count=2)
    first, second = make_job(hardware=gpus), make_job(hardware=gpus)
    job_store.create(first, limits=limits)
    job_store.create(second, limits=limits)
    with pytest.raises(QuotaExceededError):
        job_store.create(make_job(), limits=limits)

    # When a job ends, and is saved again after
    ended = job_store.save(first.with_status(JobStatus.CANCELLED), expected_version=0)
    job_store.save(ended.model_copy(update={"name": "renamed"}), expected_version=ended.version)

    # Then one create fits again, and no more
    assert job_store.active_usage("org-a") == ActiveUsage(jobs=1, gpus=2)
    job_store.create(make_job(), limits=limits)
    with pytest.raises(QuotaExceededError):
        job_store.create(make_job(), limits=limits)


def test_the_gpu_quota_counts_the_gpus_of_jobs_not_ended(job_store: JobStore) -> None:
    limits = ActiveLimits(max_jobs=10, max_gpus=4)
    job_store.create(make_job(hardware=HardwareParams(gpu_count=3)), limits=limits)

    with pytest.raises(QuotaExceededError) as refused:
        job_store.create(make_job(hardware=HardwareParams(gpu_count=2)), limits=limits)
    job_store.create(make_job(hardware=HardwareParams(gpu_count=1)), limits=limits)

    assert refused.value.code == "quota_gpus"
    assert job_store.active_usage("org-a") == ActiveUsage(jobs=2, gpus=4)
    assert job_store.active_usage("org-b") == ActiveUsage()


def test_series_names_are_listed_and_reads_capped_per_series(job_store: JobStore) -> None:
    job_store.put_metrics(
        "job-1",
        [
            MetricPoint(name=name, step=step, value=float(step), time=T0)
            for name in ("loss", "epoch", "gpu0_util_pct")
            for step in range(1, 31)
        ],
    )

    capped = job_store.query_metrics(
        "job-1", names=["loss", "epoch"], min_step=5, max_step=None, limit=4
    )
    every = job_store.query_metrics("job-1", names=None, min_step=None, max_step=None, limit=2)

    assert job_store.metric_names("job-1", limit=10) == ["epoch", "gpu0_util_pct", "loss"]
    assert job_store.metric_names("job-1", limit=2) == ["epoch", "gpu0_util_pct"]
    assert job_store.metric_names("job-2", limit=10) == []
    assert [(p.name, p.step) for p in capped] == [
        *[("epoch", step) for step in range(5, 9)],
        *[("loss", step) for step in range(5, 9)],
    ]
    assert [(p.name, p.step) for p in every] == [
        (name, step) for name in ("epoch", "gpu0_util_pct", "loss") for step in (1, 2)
    ]


def test_a_sparse_list_filter_reads_a_budget_per_page(job_store: JobStore) -> None:
    # Given one failed job older than 3 budgets of others
    failed = make_job(created_at=T0, status=JobStatus.FAILED)
    job_store.create(failed)
    for minute in range(1, 3 * BUDGET + 1):
        job_store.create(make_job(created_at=T0 + timedelta(minutes=minute)))

    # When the failed jobs are listed, following the cursors
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        jobs, cursor = job_store.list_jobs(
            "org-a", JobFilter(status=JobStatus.FAILED), limit=10, cursor=cursor
        )
        pages.append([job.job_id for job in jobs])
        if cursor is None:
            break

    # Then the first pages are empty with a cursor, and the job is found once
    assert pages[0] == [] and 3 <= len(pages) <= 4
    assert [job_id for page in pages for job_id in page] == [failed.job_id]


def test_a_sparse_log_filter_reads_a_budget_per_page(log_store: LogStore) -> None:
    # Given many debug lines of two sources and one error after them
    lines = [
        LogEntry(
            time=LOG_T0 + timedelta(seconds=i),
            source=("build", "training")[i % 2],
            level="debug",
            message=f"debug {i}",
        )
        for i in range(40)
    ]
    error = LogEntry(
        time=LOG_T0 + timedelta(seconds=50), source="training", level="error", message="x"
    )
    log_store.append("job-1", [*lines, error])

    # When errors are asked for, following the cursors
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page, cursor = log_store.query("job-1", LogQuery(min_level="error", limit=5, cursor=cursor))
        pages.append([entry.message for entry in page])
        if cursor is None:
            break

    # Then the first page is empty with a cursor, and the error is found once
    assert pages[0] == [] and len(pages) > 2
    assert [message for page in pages for message in page] == ["x"]
