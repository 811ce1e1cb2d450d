"""The operations dashboard and its alarms, over the other stacks' resources by name."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.constructs.job_metrics import JobMetrics
from infra.constructs.operations_alarms import OperationsAlarms
from infra.constructs.operations_dashboard import OperationsDashboard


class ObservabilityStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, cluster_name: str, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.job_metrics = JobMetrics(self, "JobMetrics")
        self.dashboard = OperationsDashboard(
            self,
            "Dashboard",
            cluster_name=cluster_name,
            job_metrics=self.job_metrics.metrics,
            job_usage=self.job_metrics.usage,
        )
        self.alarms = OperationsAlarms(
            self,
            "Alarms",
            cluster_name=cluster_name,
            job_failures=self.job_metrics.metrics["JobsFailed"],
        )
        CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn)
