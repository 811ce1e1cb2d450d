"""Alarms that want a person, on one SNS topic (subscribe after deploy, see docs/infra.md)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constants import ALARM_TOPIC_NAME
from infra.constructs.operations_dashboard import (
    HOUR,
    api_metric,
    cluster_metric,
    lambda_errors,
    workflow_metric,
)
from infra.grants import acknowledge

API_5XX_PER_5_MIN = 5
API_P99_MS = 10_000  # a third of the integration limit (29 s)
JOB_FAILURES_PER_HOUR = 3


class OperationsAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster_name: str,
        job_failures: cloudwatch.Metric,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.topic = sns.Topic(self, "Topic", topic_name=ALARM_TOPIC_NAME, enforce_ssl=True)
        acknowledge(
            self.topic,
            "AwsSolutions-SNS2",
            "Alarm notifications carry metric names and thresholds, no job data; CloudWatch "
            "cannot publish to a topic under the AWS managed SNS key, and a customer key "
            "costs $1/month for no protected content.",
        )
        at_least_one = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        specs: list[tuple[str, cloudwatch.IMetric, float, str]] = [
            (
                "WorkflowFailed",
                workflow_metric(stack, "ExecutionsFailed"),
                1,
                "A job workflow execution failed (not a job failure: the workflow itself).",
            ),
            (
                "WorkflowTimedOut",
                workflow_metric(stack, "ExecutionsTimedOut"),
                1,
                "A job workflow ran past its timeout.",
            ),
            (
                "ApiServerErrors",
                api_metric("5XXError", "Sum"),
                API_5XX_PER_5_MIN,
                "The API answered 5xx repeatedly in 5 minutes.",
            ),
            (
                "ApiSlow",
                api_metric("Latency", "p99"),
                API_P99_MS,
                "The API's p99 latency passed 10 s.",
            ),
            (
                "LambdaErrors",
                lambda_errors(),
                1,
                "A Lambda of the account failed (handler error or timeout).",
            ),
            (
                "JobFailures",
                job_failures.with_(period=HOUR, statistic="Sum"),
                JOB_FAILURES_PER_HOUR,
                "Several jobs failed within an hour: see the dashboard's failures by code.",
            ),
            (
                "ClusterNodesFailed",
                cluster_metric(
                    cluster_name, "cluster_failed_node_count", "Maximum", Duration.minutes(5)
                ),
                1,
                "A node of the training cluster reports a failed condition.",
            ),
        ]
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for name, metric, threshold, description in specs:
            alarm = cloudwatch.Alarm(
                self,
                name,
                alarm_name=f"whetstone-{name}",
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=at_least_one,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(actions.SnsAction(self.topic))
            self.alarms[name] = alarm
