"""The operations dashboard: jobs, failures, queue, GPU hours, spend, API, Lambdas, workflow."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from infra.constants import API_NAME, API_STAGE, DASHBOARD_NAME, JOB_LOG_GROUP
from infra.constructs.job_metrics import FAILURE_LINE
from infra.grants import state_machine_arn

PERIOD = Duration.minutes(5)
HOUR = Duration.hours(1)
BILLING_REGION = "us-east-1"  # AWS/Billing exists there only
WIDTH = 12
HEIGHT = 6


def api_metric(name: str, statistic: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/ApiGateway",
        metric_name=name,
        dimensions_map={"ApiName": API_NAME, "Stage": API_STAGE},
        statistic=statistic,
        period=PERIOD,
    )


def workflow_metric(stack: Stack, name: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/States",
        metric_name=name,
        dimensions_map={"StateMachineArn": state_machine_arn(stack)},
        statistic="Sum",
        period=PERIOD,
    )


def cluster_metric(
    cluster_name: str, name: str, statistic: str, period: Duration
) -> cloudwatch.Metric:
    """Container Insights (the cluster's CloudWatch agent add-on)."""
    return cloudwatch.Metric(
        namespace="ContainerInsights",
        metric_name=name,
        dimensions_map={"ClusterName": cluster_name},
        statistic=statistic,
        period=period,
    )


def lambda_errors() -> cloudwatch.Metric:
    """Errors of every Lambda in the account and region (a deployment has its own account)."""
    return cloudwatch.Metric(
        namespace="AWS/Lambda", metric_name="Errors", statistic="Sum", period=PERIOD
    )


class OperationsDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster_name: str,
        job_metrics: dict[str, cloudwatch.Metric],
        job_usage: dict[str, cloudwatch.Metric],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # The agent samples each node every minute: the hour's sum over nodes / 60 = GPU hours.
        gpu_hours = cloudwatch.MathExpression(
            expression="gpus / 60",
            using_metrics={"gpus": cluster_metric(cluster_name, "node_gpu_limit", "Sum", HOUR)},
            label="GPU hours (GPUs on nodes)",
            period=HOUR,
        )
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=DASHBOARD_NAME,
            default_interval=Duration.days(1),
            widgets=[
                [
                    cloudwatch.GraphWidget(
                        title="Jobs by status reached",
                        left=[metric.with_(period=HOUR) for metric in job_metrics.values()],
                        stacked=True,
                        width=WIDTH,
                        height=HEIGHT,
                    ),
                    cloudwatch.LogQueryWidget(
                        title="Failures by code and step",
                        log_group_names=[JOB_LOG_GROUP],
                        query_lines=[
                            "fields @timestamp",
                            f'filter message = "{FAILURE_LINE}"',
                            "stats count() as failures by fields.code, fields.step",
                            "sort failures desc",
                        ],
                        view=cloudwatch.LogQueryVisualizationType.TABLE,
                        width=WIDTH,
                        height=HEIGHT,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Queue: pods waiting for a node",
                        left=[
                            cluster_metric(cluster_name, "pod_status_pending", "Maximum", PERIOD)
                        ],
                        width=WIDTH,
                        height=HEIGHT,
                    ),
                    cloudwatch.GraphWidget(
                        title="GPU hours per hour: used by ended jobs, held by nodes",
                        left=[job_usage["JobGpuHours"].with_(period=HOUR), gpu_hours],
                        width=WIDTH,
                        height=HEIGHT,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Spend (USD): ended jobs per day; the account's charges this month",
                        left=[job_usage["JobSpendUsd"].with_(period=Duration.days(1))],
                        right=[
                            cloudwatch.Metric(
                                namespace="AWS/Billing",
                                metric_name="EstimatedCharges",
                                dimensions_map={"Currency": "USD"},
                                statistic="Maximum",
                                period=Duration.hours(6),
                                region=BILLING_REGION,
                            )
                        ],
                        width=WIDTH,
                        height=HEIGHT,
                    ),
                    cloudwatch.GraphWidget(
                        title="API latency (ms)",
                        left=[api_metric("Latency", "p50"), api_metric("Latency", "p99")],
                        width=WIDTH,
                        height=HEIGHT,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="API errors",
                        left=[
                            api_metric("4XXError", "Sum"),
                            api_metric("5XXError", "Sum"),
                            api_metric("Count", "Sum"),
                        ],
                        width=WIDTH,
                        height=HEIGHT,
                    ),
                    cloudwatch.GraphWidget(
                        title="Lambda errors",
                        left=[
                            cloudwatch.MathExpression(
                                expression="SEARCH('{AWS/Lambda,FunctionName} "
                                "MetricName=\"Errors\" Whetstone', 'Sum', 300)",
                                label="",
                                period=PERIOD,
                            )
                        ],
                        width=WIDTH,
                        height=HEIGHT,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Workflow executions",
                        left=[
                            workflow_metric(stack, name)
                            for name in (
                                "ExecutionsStarted",
                                "ExecutionsSucceeded",
                                "ExecutionsFailed",
                                "ExecutionsTimedOut",
                                "ExecutionsAborted",
                            )
                        ],
                        width=WIDTH * 2,
                        height=HEIGHT,
                    ),
                ],
            ],
        )
