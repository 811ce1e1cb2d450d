"""Every Lambda: a handler that exists, its own role, no AWS managed policy, scoped grants."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.constants import JOB_LOG_GROUP, TABLE_NAME
from infra.lambda_code import LAMBDA_RUNTIME, staged_sources


def _functions(synthesized: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for stack in synthesized.templates:
        for name, function in synthesized.resources(stack, "AWS::Lambda::Function").items():
            # Ours run functions/; CDK's own (bucket notifications, kubectl) run their code.
            if function["Properties"]["Handler"].startswith("functions."):
                found[f"{stack}/{name}"] = function
    return found


def test_every_handler_path_exists_in_the_repository(synthesized: Any) -> None:
    functions = _functions(synthesized)
    assert len(functions) == 16
    for function in functions.values():
        module, _, attribute = function["Properties"]["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute))


def _function_roles(synthesized: Any) -> list[tuple[str, str]]:
    return [
        (key.split("/")[0], f["Properties"]["Role"]["Fn::GetAtt"][0])
        for key, f in _functions(synthesized).items()
    ]


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
        assert "WHETSTONE_STATE_MACHINE_ARN" in env  # the aws platform refuses to start without
        assert len(props["Layers"]) == 1


def test_no_function_role_uses_an_aws_managed_policy(synthesized: Any) -> None:
    for stack, name in _function_roles(synthesized):
        role = synthesized.templates[stack]["Resources"][name]
        assert "ManagedPolicyArns" not in role["Properties"], name


_CDK_HANDLERS = (
    "BucketNotificationsHandler",
    "CustomCDKBucketDeployment",
    "CustomS3AutoDeleteObjects",
    "AWS679f53fac002430cb0da5b7982bd2287",  # AwsCustomResource: the bucket's CORS
)


def test_aws_managed_policies_only_where_aws_maintains_the_role_kind(synthesized: Any) -> None:
    # Given the compute stack's roles: the cluster, its nodes, the log agent, CDK's kubectl
    managed = {
        arn["Fn::Join"][1][-1].removeprefix(":iam::aws:policy/")
        for role in synthesized.resources("WhetstoneCompute", "AWS::IAM::Role").values()
        for arn in role["Properties"].get("ManagedPolicyArns", [])
        if "Fn::Join" in arn
    }
    # Then each is a policy AWS publishes for exactly that kind of principal
    assert managed == {
        "AmazonEKSClusterPolicy",
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonEC2ContainerRegistryReadOnly",
        "AmazonEC2ContainerRegistryPullOnly",
        "AmazonSSMManagedInstanceCore",
        "CloudWatchAgentServerPolicy",
        "service-role/AWSLambdaBasicExecutionRole",
        "service-role/AWSLambdaVPCAccessExecutionRole",
    }
    for stack in ("WhetstoneData", "WhetstoneBuild", "WhetstoneWorkflow", "WhetstoneApi"):
        for name, role in synthesized.resources(stack, "AWS::IAM::Role").items():
            # CDK's own handlers: bucket notifications, the console's files and bucket
            if not name.startswith(_CDK_HANDLERS):
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
    assert describers == ["Cancel", "Fail", "Pause", "Reconciler", "RunStage"]


def test_the_code_asset_ships_bytecode_that_imports_without_its_sources(tmp_path: Path) -> None:
    staged = staged_sources()
    if LAMBDA_RUNTIME.name != f"python{sys.version_info.major}.{sys.version_info.minor}":
        pytest.skip(f"bytecode is compiled only by the Lambda's Python ({LAMBDA_RUNTIME.name})")
    assert list(staged.rglob("*.pyc"))
    copy = tmp_path / "asset"
    shutil.copytree(staged, copy)
    for source in copy.rglob("*.py"):
        source.write_text("raise ImportError('the source was read, not the bytecode')\n")

    imported = subprocess.run(
        [sys.executable, "-c", "import functions.api"], cwd=copy, capture_output=True, text=True
    )

    assert imported.returncode == 0, imported.stderr


def test_only_the_stop_paths_archive_in_a_lambda_the_data_work_runs_on_the_cluster(
    synthesized: Any,
) -> None:
    timeouts = {
        function["Properties"]["Handler"]: function["Properties"]["Timeout"]
        for function in _functions(synthesized).values()
    }

    assert timeouts["functions.workflow.cancel"] == 15 * 60
    assert timeouts["functions.workflow.fail"] == 15 * 60
    assert timeouts["functions.workflow.run_stage"] == 5 * 60
    assert timeouts["functions.workflow.complete"] == 5 * 60


def test_only_ingest_the_reconciler_and_the_api_answer_a_stage_s_wait(synthesized: Any) -> None:
    answerers = sorted(
        name.split("Role")[0].removeprefix("TrainerEvents")
        for stack in synthesized.templates
        for name, policy in synthesized.resources(stack, "AWS::IAM::Policy").items()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "states:SendTaskFailure" in statement["Action"]
    )

    assert answerers == ["Ingest", "JobsApiHandler", "Reconciler"]
