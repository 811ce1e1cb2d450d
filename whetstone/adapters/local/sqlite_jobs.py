"""JobStore on one SQLite file in WAL mode, for the local runtime.

The record is kept as JSON beside the columns listings filter on. Each
connection is used by one thread; writers serialize on SQLite's lock, and every
record write is conditional on the version it read (`UPDATE ... WHERE version = ?`).
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from whetstone.adapters.local.cursors import decode_cursor, encode_cursor
from whetstone.core.errors import ConflictError, StaleWriteError
from whetstone.core.job import JobFilter, JobRecord, MetricPoint
from whetstone.core.lifecycle import TERMINAL_STATUSES
from whetstone.core.quota import ActiveLimits, ActiveUsage, quota_refusal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    status TEXT NOT NULL,
    method TEXT NOT NULL,
    base_model TEXT NOT NULL,
    created_at TEXT NOT NULL,
    idempotency_key TEXT,
    version INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_org ON jobs (org_id, created_at DESC, job_id DESC);
CREATE INDEX IF NOT EXISTS jobs_by_org_status ON jobs (org_id, status);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_by_key ON jobs (org_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS metrics (
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL NOT NULL,
    time TEXT NOT NULL,
    PRIMARY KEY (job_id, name, step)
);
"""


def _timestamp(moment: datetime) -> str:
    """A fixed-width UTC timestamp, so text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _created_and_id(value: list[str]) -> tuple[str, str]:
    created_at, job_id = value
    return str(created_at), str(job_id)


# The rows of an organization's index one listing request reads at most.
LIST_READ_BUDGET = 1000
_ENDED = tuple(status.value for status in TERMINAL_STATUSES)


def _usage(db: sqlite3.Connection, org_id: str) -> ActiveUsage:
    jobs, gpus = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(json_extract(record, '$.spec.hardware.gpu_count')), 0) "
        f"FROM jobs WHERE org_id = ? AND status NOT IN ({', '.join('?' for _ in _ENDED)})",
        (org_id, *_ENDED),
    ).fetchone()
    return ActiveUsage(jobs=jobs, gpus=gpus)


class SQLiteJobStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection().executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def create(self, job: JobRecord, *, limits: ActiveLimits | None = None) -> None:
        try:
            with self._transaction() as db:
                # BEGIN IMMEDIATE holds the write lock from the count to the insert, so
                # concurrent creates see each other's jobs.
                if limits is not None:
                    refusal = quota_refusal(
                        _usage(db, job.org_id), job.spec.hardware.gpu_count, limits
                    )
                    if refusal is not None:
                        raise refusal
                db.execute(
                    "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job.job_id,
                        job.org_id,
                        job.status.value,
                        job.spec.method.value,
                        job.spec.base_model,
                        _timestamp(job.created_at),
                        job.idempotency_key,
                        job.version,
                        job.model_dump_json(),
                    ),
                )
        except sqlite3.IntegrityError as error:
            raise ConflictError(
                f"job {job.job_id} or its idempotency key exists already", code="job_exists"
            ) from error

    def active_usage(self, org_id: str) -> ActiveUsage:
        return _usage(self._connection(), org_id)

    def get(self, job_id: str) -> JobRecord | None:
        row = (
            self._connection()
            .execute("SELECT record FROM jobs WHERE job_id = ?", (job_id,))
            .fetchone()
        )
        return JobRecord.model_validate_json(row[0]) if row else None

    def save(self, job: JobRecord, *, expected_version: int) -> JobRecord:
        saved = job.model_copy(update={"version": expected_version + 1})
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = ?, version = ?, record = ? "
                "WHERE job_id = ? AND version = ?",
                (
                    saved.status.value,
                    saved.version,
                    saved.model_dump_json(),
                    job.job_id,
                    expected_version,
                ),
            )
        if cursor.rowcount != 1:
            raise StaleWriteError(f"job {job.job_id} changed since it was read")
        return saved

    def list_jobs(
        self, org_id: str, filters: JobFilter, *, limit: int, cursor: str | None
    ) -> tuple[list[JobRecord], str | None]:
        # The organization's index range is read up to LIST_READ_BUDGET rows; the other
        # filters apply to those, so a filter that matches little returns a short page and
        # a cursor past what was read, as the DynamoDB store does.
        clauses, params = ["org_id = ?"], [org_id]
        matches: list[str] = []
        wanted: list[str] = []
        for column, value in (
            ("status", filters.status),
            ("method", filters.method),
            ("base_model", filters.base_model),
        ):
            if value is not None:
                matches.append(f"{column} = ?")
                wanted.append(str(value))
        if filters.created_after is not None:
            clauses.append("created_at >= ?")
            params.append(_timestamp(filters.created_after))
        if filters.created_before is not None:
            clauses.append("created_at < ?")
            params.append(_timestamp(filters.created_before))
        if cursor is not None:
            clauses.append("(created_at, job_id) < (?, ?)")
            params.extend(decode_cursor(cursor, _created_and_id))
        read_at_most = LIST_READ_BUDGET if matches else limit + 1
        rows = (
            self._connection()
            .execute(
                f"SELECT created_at, job_id, CASE WHEN {' AND '.join(matches) or '1'} "
                f"THEN record END FROM jobs WHERE {' AND '.join(clauses)} "
                "ORDER BY created_at DESC, job_id DESC LIMIT ?",
                (*wanted, *params, read_at_most),
            )
            .fetchall()
        )
        found = [row for row in rows if row[2] is not None]
        jobs = [JobRecord.model_validate_json(row[2]) for row in found[:limit]]
        if len(found) > limit:
            last = found[limit - 1]
        elif len(rows) == read_at_most:
            last = rows[-1]
        else:
            return jobs, None
        return jobs, encode_cursor([last[0], last[1]])

    def list_unfinished(self) -> list[JobRecord]:
        rows = (
            self._connection()
            .execute(
                f"SELECT record FROM jobs WHERE status NOT IN ({', '.join('?' for _ in _ENDED)}) "
                "ORDER BY created_at",
                _ENDED,
            )
            .fetchall()
        )
        return [JobRecord.model_validate_json(row[0]) for row in rows]

    def find_by_idempotency_key(self, org_id: str, key: str) -> JobRecord | None:
        row = (
            self._connection()
            .execute(
                "SELECT record FROM jobs WHERE org_id = ? AND idempotency_key = ?", (org_id, key)
            )
            .fetchone()
        )
        return JobRecord.model_validate_json(row[0]) if row else None

    def delete(self, job_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM metrics WHERE job_id = ?", (job_id,))

    def put_metrics(self, job_id: str, points: Sequence[MetricPoint]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?)",
                [(job_id, p.name, p.step, p.value, _timestamp(p.time)) for p in points],
            )

    def metric_names(self, job_id: str, *, limit: int) -> list[str]:
        # Each step of the recursion is one seek on the primary key (job_id, name, step).
        rows = (
            self._connection()
            .execute(
                "WITH RECURSIVE series(name) AS ("
                "SELECT MIN(name) FROM metrics WHERE job_id = ? UNION ALL "
                "SELECT (SELECT MIN(name) FROM metrics WHERE job_id = ? AND name > series.name) "
                "FROM series WHERE series.name IS NOT NULL) "
                "SELECT name FROM series WHERE name IS NOT NULL LIMIT ?",
                (job_id, job_id, limit),
            )
            .fetchall()
        )
        return [row[0] for row in rows]

    def query_metrics(
        self,
        job_id: str,
        *,
        names: Sequence[str] | None,
        min_step: int | None,
        max_step: int | None,
        limit: int | None = None,
    ) -> list[MetricPoint]:
        if limit is not None:
            chosen = names if names is not None else self.metric_names(job_id, limit=sys.maxsize)
            return [
                point
                for name in sorted(set(chosen))
                for point in self._series(job_id, name, min_step, max_step, limit)
            ]
        clauses: list[str] = ["job_id = ?"]
        params: list[object] = [job_id]
        if names is not None:
            clauses.append(f"name IN ({', '.join('?' for _ in names)})")
            params.extend(names)
        if min_step is not None:
            clauses.append("step >= ?")
            params.append(min_step)
        if max_step is not None:
            clauses.append("step <= ?")
            params.append(max_step)
        rows = (
            self._connection()
            .execute(
                f"SELECT name, step, value, time FROM metrics WHERE {' AND '.join(clauses)} "
                "ORDER BY name, step",
                params,
            )
            .fetchall()
        )
        return [MetricPoint(name=n, step=s, value=v, time=t) for n, s, v, t in rows]

    def _series(
        self, job_id: str, name: str, min_step: int | None, max_step: int | None, limit: int
    ) -> list[MetricPoint]:
        rows = (
            self._connection()
            .execute(
                "SELECT step, value, time FROM metrics WHERE job_id = ? AND name = ? "
                "AND step >= ? AND step <= ? ORDER BY step LIMIT ?",
                (
                    job_id,
                    name,
                    -(2**63) if min_step is None else min_step,
                    2**63 - 1 if max_step is None else max_step,
                    limit,
                ),
            )
            .fetchall()
        )
        return [MetricPoint(name=name, step=s, value=v, time=t) for s, v, t in rows]
