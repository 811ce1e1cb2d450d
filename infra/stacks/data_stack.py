"""Jobs table, artifacts bucket, job log group: the state that outlives every other stack."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from infra.constructs.artifacts_bucket import ArtifactsBucket
from infra.constructs.job_log_group import JobLogGroup
from infra.constructs.jobs_table import JobsTable


class DataStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.jobs = JobsTable(self, "Jobs")
        self.artifacts = ArtifactsBucket(self, "Artifacts")
        self.job_logs = JobLogGroup(self, "JobLogs")
