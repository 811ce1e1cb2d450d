"""Lines the platform writes into a job's logs about its workflow."""

from __future__ import annotations

from whetstone.core.job import JobRecord, LogEntry, LogSource, utcnow
from whetstone.service.platform import Platform

# Written once per job that ends, with what it used: the infra's metric filters sum these
# lines into GPU hours and spend (infra/constructs/job_metrics.py).
JOB_ENDED_LINE = "job ended"


def log(platform: Platform, job_id: str, source: LogSource, message: str, **fields: object) -> None:
    """One line in the job's build, deployment or training log."""
    level = "error" if fields.pop("error", False) else "info"
    entry = LogEntry(time=utcnow(), source=source, level=level, message=message, fields=fields)
    platform.logs.append(job_id, [entry])


def log_ended(platform: Platform, job: JobRecord) -> None:
    """The `job ended` line of a job that has just ended."""
    log(
        platform,
        job.job_id,
        "deployment",
        JOB_ENDED_LINE,
        status=job.status.value,
        gpu_hours=job.cost.compute_hours,
        cost_usd=job.cost.current_usd,
    )
