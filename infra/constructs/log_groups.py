"""Log groups of the platform's own services, deleted with their stack.

Only the job log group (infra.constructs.job_log_group) outlives its stack: it holds what
users read about their jobs.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Construct


def service_log_group(
    scope: Construct, construct_id: str, retention: logs.RetentionDays, *, name: str | None = None
) -> logs.LogGroup:
    """A log group kept for `retention`; named `name`, where the service writing to it
    expects a fixed name."""
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=retention,
        removal_policy=RemovalPolicy.DESTROY,
    )
