"""Job metrics from the job log group: metric filters on the workflow's log lines.

The workflow (whetstone.service.workflow) writes each LogEntry as JSON; the lines below mark
a job reaching a status, so counting them gives jobs by status, and the line it writes when
a job ends carries the GPU hours and dollars the job used, so summing those gives usage and
spend; no Lambda publishes metrics.
"""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constants import JOB_LOG_GROUP, METRICS_NAMESPACE
from whetstone.service.workflow import JOB_ENDED_LINE

# metric name → the workflow's log message when a job gets there.
JOB_STATUS_LINES = {
    "JobsLaunched": "trainer launched",
    "JobsSucceeded": "artifacts verified",
    "JobsFailed": "job failed",
    "JobsStopped": "compute released after stop",
}
FAILURE_LINE = JOB_STATUS_LINES["JobsFailed"]
# metric name → the field of the job-ended line it sums, and its label.
JOB_USAGE_FIELDS = {
    "JobGpuHours": ("gpu_hours", "GPU hours used by ended jobs"),
    "JobSpendUsd": ("cost_usd", "USD spent by ended jobs"),
}


class JobMetrics(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self._log_group = logs.LogGroup.from_log_group_name(self, "JobLogs", JOB_LOG_GROUP)
        self.metrics: dict[str, cloudwatch.Metric] = {
            name: self._filter(
                name, message, value="1", unit=cloudwatch.Unit.COUNT, default_value=0
            ).metric(statistic="Sum", label=name.removeprefix("Jobs"))
            for name, message in JOB_STATUS_LINES.items()
        }
        self.usage: dict[str, cloudwatch.Metric] = {
            name: self._filter(
                name, JOB_ENDED_LINE, value=f"$.fields.{field}", unit=cloudwatch.Unit.NONE
            ).metric(statistic="Sum", label=label)
            for name, (field, label) in JOB_USAGE_FIELDS.items()
        }

    def _filter(
        self,
        name: str,
        message: str,
        *,
        value: str,
        unit: cloudwatch.Unit,
        default_value: int | None = None,
    ) -> logs.MetricFilter:
        """The metric `name`: `value` of each job log line whose message is `message`."""
        return logs.MetricFilter(
            self,
            name,
            log_group=self._log_group,
            filter_pattern=logs.FilterPattern.string_value("$.message", "=", message),
            metric_namespace=METRICS_NAMESPACE,
            metric_name=name,
            metric_value=value,
            default_value=default_value,
            unit=unit,
        )
