"""Every Lambda: a handler that exists, its own role, no AWS managed policy, scoped grants."""

from __future__ import annotations

import importlib
from typing import Any

from infra.constants import JOB_LOG_GROUP, TABLE_NAME


def _functions(synthesized: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for stack in synthesized.templates:
        for name, function in synthesized.resources(stack, "AWS::Lambda::Function").items():
            if not name.startswith("BucketNotificationsHandler"):  # CDK's own
                found[f"{stack}/{name}"] = function
    return found


def test_every_handler_path_exists_in_the_repository(synthesized: Any) -> None:
    functions = _functions(synthesized)
    assert len(functions) == 14
    for function in functions.values():
        module, _, attribute = function["Properties"]["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute))


def test_every_function_has_its_own_role(synthesized: Any) -> None:
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in _functions(synthesized).values()]
    assert len(set(roles)) == len(roles)


def test_functions_run_in_the_aws_runtime_with_tracing(synthesized: Any) -> None:
    for function in _functions(synthesized).values():
        props = function["Properties"]
        assert props["Runtime"] == "python3.11"
        assert props["TracingConfig"] == {"Mode": "Active"}
        env = props["Environment"]["Variables"]
        assert env["WHETSTONE_RUNTIME"] == "aws"
        assert env["WHETSTONE_TABLE_NAME"] == TABLE_NAME
        assert env["WHETSTONE_LOG_GROUP"] == JOB_LOG_GROUP
        assert len(props["Layers"]) == 1


def test_no_role_of_ours_uses_an_aws_managed_policy(synthesized: Any) -> None:
    for stack in synthesized.templates:
        for name, role in synthesized.resources(stack, "AWS::IAM::Role").items():
            if not name.startswith("BucketNotificationsHandler"):
                assert "ManagedPolicyArns" not in role["Properties"], name


def test_no_statement_allows_every_action(synthesized: Any) -> None:
    for stack in synthesized.templates:
        for name, policy in synthesized.resources(stack, "AWS::IAM::Policy").items():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                actions = [actions] if isinstance(actions, str) else actions
                assert not any(a == "*" or a.endswith(":*") for a in actions), (name, actions)


def test_only_the_reconciler_may_stop_executions(synthesized: Any) -> None:
    stoppers = [
        name
        for stack in synthesized.templates
        for name, policy in synthesized.resources(stack, "AWS::IAM::Policy").items()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "states:StopExecution" in statement["Action"]
    ]
    assert len(stoppers) == 1 and stoppers[0].startswith("Reconciler")


def test_only_steps_that_talk_to_the_cluster_may_describe_it(synthesized: Any) -> None:
    describers = sorted(
        name.removeprefix("JobWorkflow").split("Role")[0]
        for name, policy in synthesized.resources("WhetstoneWorkflow", "AWS::IAM::Policy").items()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "eks:DescribeCluster" in statement["Action"]
    )
    assert describers == ["Cancel", "Fail", "Launch", "Poll", "Reconciler"]
