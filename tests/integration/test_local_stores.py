"""The local JobStore (SQLite) beyond what the API tests reach."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from support.jobs import T0, assert_the_second_of_two_saves_from_one_version_is_stale, make_job

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
