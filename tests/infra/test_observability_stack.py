"""The observability stack: job metrics from the job log, the dashboard, alarms to a topic."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.constants import ALARM_TOPIC_NAME, API_NAME, DASHBOARD_NAME, JOB_LOG_GROUP
from infra.constructs.job_metrics import JOB_STATUS_LINES, JOB_USAGE_FIELDS
from whetstone.service import workflow

STACK = "WhetstoneObservability"


@pytest.fixture(scope="module")
def dashboard_body(synthesized: Any) -> str:
    (dashboard,) = synthesized.resources(STACK, "AWS::CloudWatch::Dashboard").values()
    return json.dumps(dashboard["Properties"]["DashboardBody"])


def test_job_metrics_count_the_lines_the_workflow_writes(template: Template) -> None:
    # Given the workflow's source: each status line is one it really logs
    source = inspect.getsource(workflow)
    for name, message in JOB_STATUS_LINES.items():
        assert f'"{message}"' in source, message
        # Then a filter on the job log group counts it
        template.has_resource_properties(
            "AWS::Logs::MetricFilter",
            {
                "LogGroupName": JOB_LOG_GROUP,
                "FilterPattern": f'{{ $.message = "{message}" }}',
                "MetricTransformations": [
                    Match.object_like({"MetricName": name, "MetricValue": "1", "DefaultValue": 0})
                ],
            },
        )


def test_gpu_hours_and_spend_sum_the_line_the_workflow_writes_when_a_job_ends(
    template: Template,
) -> None:
    for name, (field, _) in JOB_USAGE_FIELDS.items():
        template.has_resource_properties(
            "AWS::Logs::MetricFilter",
            {
                "LogGroupName": JOB_LOG_GROUP,
                "FilterPattern": f'{{ $.message = "{workflow.JOB_ENDED_LINE}" }}',
                "MetricTransformations": [
                    Match.object_like({"MetricName": name, "MetricValue": f"$.fields.{field}"})
                ],
            },
        )


def test_dashboard_shows_every_area_the_issue_asks_for(
    template: Template, dashboard_body: str
) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardName": DASHBOARD_NAME}
    )
    for title in (
        "Jobs by status",
        "Failures by code",
        "Queue",
        "GPU hours",
        "Spend",
        "API latency",
        "API errors",
        "Lambda errors",
        "Workflow executions",
    ):
        assert title in dashboard_body, title
    for metric in (
        "JobsFailed",
        "pod_status_pending",
        "JobGpuHours",
        "node_gpu_limit",
        "JobSpendUsd",
        "EstimatedCharges",
    ):
        assert metric in dashboard_body, metric
    assert API_NAME in dashboard_body
    assert "whetstone-jobs" in dashboard_body  # the state machine, by its fixed name


def test_every_alarm_notifies_the_topic_and_ignores_missing_data(synthesized: Any) -> None:
    (topic_id,) = synthesized.resources(STACK, "AWS::SNS::Topic")
    alarms = synthesized.resources(STACK, "AWS::CloudWatch::Alarm").values()
    for alarm in alarms:
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": topic_id}]
        assert props["TreatMissingData"] == "notBreaching"
        assert props["AlarmName"].startswith("whetstone-")
    names = {a["Properties"]["AlarmName"] for a in alarms}
    assert {
        "whetstone-WorkflowFailed",
        "whetstone-ApiServerErrors",
        "whetstone-LambdaErrors",
    } <= names


def test_alarm_topic_takes_tls_only(template: Template) -> None:
    template.has_resource_properties("AWS::SNS::Topic", {"TopicName": ALARM_TOPIC_NAME})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )
