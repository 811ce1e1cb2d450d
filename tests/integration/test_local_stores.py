"""The local JobStore (SQLite) beyond what the API tests reach."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from support.jobs import T0, assert_the_second_of_two_saves_from_one_version_is_stale, make_job
from support.listing import assert_a_sparse_filter_reads_a_budget_per_page
from support.log_store import assert_a_sparse_level_filter_reads_a_budget_per_page
from support.metric_store import assert_series_names_and_capped_reads
from support.quota import (
    assert_an_ended_job_gives_its_slot_back_once,
    assert_concurrent_creates_stop_at_the_quota,
    assert_the_gpu_quota_counts_the_gpus_of_jobs_not_ended,
)

from whetstone.adapters.local import file_logs, sqlite_jobs
from whetstone.adapters.local.file_logs import FileLogStore
from whetstone.adapters.local.sqlite_jobs import SQLiteJobStore
from whetstone.core.errors import ConflictError, StaleWriteError
from whetstone.core.lifecycle import JobStatus


@pytest.fixture
def store(tmp_path: Path) -> SQLiteJobStore:
    return SQLiteJobStore(tmp_path / "jobs.sqlite3")


def test_the_database_runs_in_wal_mode(store: SQLiteJobStore, tmp_path: Path) -> None:
    store.create(make_job())
    assert (tmp_path / "jobs.sqlite3-wal").exists()


def test_two_saves_from_the_same_version_keep_only_the_first(store: SQLiteJobStore) -> None:
    assert_the_second_of_two_saves_from_one_version_is_stale(store)


def test_creating_a_job_twice_is_a_conflict(store: SQLiteJobStore) -> None:
    job = make_job()
    store.create(job)
    with pytest.raises(ConflictError):
        store.create(job)


def test_concurrent_writers_from_threads_lose_no_update(store: SQLiteJobStore) -> None:
    job = make_job()
    store.create(job)
    wins: list[int] = []

    def writer() -> None:
        for _ in range(20):
            current = store.get(job.job_id)
            assert current is not None
            try:
                store.save(current, expected_version=current.version)
                wins.append(1)
            except StaleWriteError:
                pass

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stored = store.get(job.job_id)
    assert stored is not None and stored.version == len(wins)


def test_unfinished_jobs_of_every_organization_are_listed(store: SQLiteJobStore) -> None:
    running = make_job("org-a", status=JobStatus.TRAINING)
    pending = make_job("org-b", created_at=T0 + timedelta(seconds=1))
    store.create(running)
    store.create(pending)
    store.create(make_job("org-a", status=JobStatus.FAILED))

    assert [job.job_id for job in store.list_unfinished()] == [running.job_id, pending.job_id]


def test_concurrent_creates_never_pass_the_job_quota(store: SQLiteJobStore) -> None:
    assert_concurrent_creates_stop_at_the_quota(store)


def test_an_ended_job_gives_its_quota_slot_back_once(store: SQLiteJobStore) -> None:
    assert_an_ended_job_gives_its_slot_back_once(store)


def test_the_gpu_quota_counts_the_gpus_of_jobs_not_ended(store: SQLiteJobStore) -> None:
    assert_the_gpu_quota_counts_the_gpus_of_jobs_not_ended(store)


def test_metric_reads_are_capped_per_series(store: SQLiteJobStore) -> None:
    assert_series_names_and_capped_reads(store)


def test_a_sparse_filter_reads_a_bounded_number_of_rows_per_page(
    store: SQLiteJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_jobs, "LIST_READ_BUDGET", 5)
    assert_a_sparse_filter_reads_a_budget_per_page(store, budget=5)


def test_a_sparse_log_filter_reads_a_bounded_number_of_lines_per_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_logs, "READ_BUDGET", 4)
    assert_a_sparse_level_filter_reads_a_budget_per_page(FileLogStore(tmp_path / "logs"), T0)
