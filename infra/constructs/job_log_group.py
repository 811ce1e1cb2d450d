"""The CloudWatch log group holding every job's build, deployment and training logs."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constants import JOB_LOG_GROUP, JOB_LOG_RETENTION


class JobLogGroup(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=JOB_LOG_GROUP,
            retention=JOB_LOG_RETENTION,
            removal_policy=RemovalPolicy.RETAIN,
        )
