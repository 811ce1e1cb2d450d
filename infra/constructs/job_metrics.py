"""Job counts by outcome, from the job log group: one metric filter per workflow log line.

The workflow (whetstone.service.workflow) writes each LogEntry as JSON; the lines below mark
a job reaching a status, so counting them gives jobs by status without publishing metrics
from the Lambdas.
"""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constants import JOB_LOG_GROUP, METRICS_NAMESPACE

# metric name → the workflow's log message when a job gets there.
JOB_STATUS_LINES = {
    "JobsLaunched": "trainer launched",
    "JobsSucceeded": "artifacts verified",
    "JobsFailed": "job failed",
    "JobsStopped": "compute released after stop",
}
FAILURE_LINE = JOB_STATUS_LINES["JobsFailed"]


class JobMetrics(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup.from_log_group_name(self, "JobLogs", JOB_LOG_GROUP)
        self.metrics: dict[str, cloudwatch.Metric] = {}
        for name, message in JOB_STATUS_LINES.items():
            log_filter = logs.MetricFilter(
                self,
                name,
                log_group=log_group,
                filter_pattern=logs.FilterPattern.string_value("$.message", "=", message),
                metric_namespace=METRICS_NAMESPACE,
                metric_name=name,
                metric_value="1",
                default_value=0,
                unit=cloudwatch.Unit.COUNT,
            )
            self.metrics[name] = log_filter.metric(statistic="Sum", label=name.removeprefix("Jobs"))
