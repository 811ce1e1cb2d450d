"""The workflow stack: the ASL file deployed as written, one Lambda and role per step."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template

from infra.constants import (
    BUILD_PROJECT_NAME,
    DEFAULT_CLUSTER_NAME,
    EVENT_BUS_NAME,
    RECONCILER_HANDLER,
    REPO_ROOT,
    STEP_FUNCTIONS,
    WORKFLOW_K8S_GROUP,
)
from whetstone.adapters.aws.sfn_orchestrator import DEFINITION_PLACEHOLDERS, render_definition
from whetstone.service.images import trainer_image_tag

STACK = "WhetstoneWorkflow"


def _state_machine(synthesized: Any) -> dict[str, Any]:
    (machine,) = synthesized.resources(STACK, "AWS::StepFunctions::StateMachine").values()
    props: dict[str, Any] = machine["Properties"]
    return props


def _function_of(synthesized: Any, handler: str) -> str:
    functions = synthesized.resources(STACK, "AWS::Lambda::Function")
    (name,) = [n for n, f in functions.items() if f["Properties"].get("Handler") == handler]
    return str(name)


def test_every_placeholder_has_a_substitution(synthesized: Any) -> None:
    substitutions = _state_machine(synthesized)["DefinitionSubstitutions"]
    assert set(substitutions) == set(DEFINITION_PLACEHOLDERS)


def test_definition_equals_the_asl_file_after_substitution(synthesized: Any) -> None:
    # Given the placeholders CDK hands CloudFormation (what each resolves to: next test)
    props = _state_machine(synthesized)
    substitutions = props["DefinitionSubstitutions"]
    names = {p: f"resolved-{p}" for p in substitutions}
    # When the orchestrator's renderer fills the ASL file with the same values
    expected = json.loads(render_definition(names))
    uploaded = synthesized.outdir / f"asset.{props['DefinitionS3Location']['Key']}"
    deployed = json.loads(render_definition(names, uploaded.read_text()))
    # Then the definition CloudFormation receives (an S3 asset) is the file, state for state
    assert deployed == expected


def test_substitutions_point_at_the_right_handlers(synthesized: Any) -> None:
    substitutions = _state_machine(synthesized)["DefinitionSubstitutions"]
    for step in STEP_FUNCTIONS:
        function = _function_of(synthesized, step.handler)
        assert substitutions[step.placeholder] == {"Fn::GetAtt": [function, "Arn"]}
    assert substitutions["BuildProjectName"] == BUILD_PROJECT_NAME
    assert substitutions["TrainerImageTag"] == trainer_image_tag(REPO_ROOT)


def test_state_machine_logs_everything_and_traces(template: Template) -> None:
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": {
                "Level": "ALL",
                "IncludeExecutionData": True,
                "Destinations": [
                    {
                        "CloudWatchLogsLogGroup": {
                            "LogGroupArn": {"Fn::GetAtt": [_any_log_group(template), "Arn"]}
                        }
                    }
                ],
            },
        },
    )


def _any_log_group(template: Template) -> str:
    groups = template.find_resources("AWS::Logs::LogGroup")
    (name,) = [n for n in groups if n.startswith("JobWorkflowLogs")]
    return name


def test_trainer_events_rule_targets_the_ingest_function(synthesized: Any) -> None:
    ingest = _function_of(synthesized, "functions.ingest.handler")
    rules = synthesized.resources(STACK, "AWS::Events::Rule").values()
    (rule,) = [r for r in rules if "EventPattern" in r["Properties"]]
    assert rule["Properties"]["EventPattern"] == {"source": ["whetstone.trainer"]}
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [ingest, "Arn"]}
    (bus,) = synthesized.resources(STACK, "AWS::Events::EventBus").values()
    assert bus["Properties"]["Name"] == EVENT_BUS_NAME


def test_reconciler_runs_on_a_schedule(synthesized: Any) -> None:
    reconciler = _function_of(synthesized, "functions.reconciler.handler")
    rules = synthesized.resources(STACK, "AWS::Events::Rule").values()
    (rule,) = [r for r in rules if "ScheduleExpression" in r["Properties"]]
    assert rule["Properties"]["ScheduleExpression"] == "rate(10 minutes)"
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [reconciler, "Arn"]}


def test_s3_drop_listens_to_incoming_only(synthesized: Any) -> None:
    (notification,) = synthesized.resources(STACK, "Custom::S3BucketNotifications").values()
    (config,) = notification["Properties"]["NotificationConfiguration"][
        "LambdaFunctionConfigurations"
    ]
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert config["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "incoming/"}]


def _role_of(synthesized: Any, handler: str) -> str:
    function = synthesized.resources(STACK, "AWS::Lambda::Function")[
        _function_of(synthesized, handler)
    ]
    return str(function["Properties"]["Role"]["Fn::GetAtt"][0])


def test_lambdas_that_talk_to_the_cluster_get_an_access_entry_into_the_workflow_group(
    synthesized: Any,
) -> None:
    entries = synthesized.resources(STACK, "AWS::EKS::AccessEntry").values()
    principals = {e["Properties"]["PrincipalArn"]["Fn::GetAtt"][0] for e in entries}
    talkers = [s.handler for s in STEP_FUNCTIONS if "eks" in s.needs] + [RECONCILER_HANDLER]
    assert principals == {_role_of(synthesized, handler) for handler in talkers}
    for entry in entries:
        props = entry["Properties"]
        assert props["ClusterName"] == DEFAULT_CLUSTER_NAME
        assert props["KubernetesGroups"] == [WORKFLOW_K8S_GROUP]
        assert "AccessPolicies" not in props  # RBAC comes from the group's ClusterRole


def test_only_launch_and_stop_paths_may_manage_pod_identity(synthesized: Any) -> None:
    policies = synthesized.resources(STACK, "AWS::IAM::Policy")
    passers = sorted(
        name.removeprefix("JobWorkflow").split("Role")[0]
        for name, policy in policies.items()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "iam:PassRole"
    )
    assert passers == ["Cancel", "Fail", "Pause", "Reconciler", "RunStage"]
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Action"] == "iam:PassRole":
                assert "role/whetstone-trainer-" in json.dumps(statement["Resource"])
                assert statement["Condition"] == {
                    "StringEquals": {"iam:PassedToService": "pods.eks.amazonaws.com"}
                }


def test_workflow_lambdas_know_the_trainer_role(synthesized: Any) -> None:
    function = synthesized.resources(STACK, "AWS::Lambda::Function")[
        _function_of(synthesized, "functions.workflow.run_stage")
    ]
    role_arn = function["Properties"]["Environment"]["Variables"]["WHETSTONE_TRAINER_ROLE_ARN"]
    assert ":role/whetstone-trainer-" in json.dumps(role_arn)
