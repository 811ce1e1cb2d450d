"""The job workflow: state_machine/workflow.asl.json and one Lambda per Task state."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constants import (
    BUILD_PROJECT_NAME,
    STATE_MACHINE_FILE,
    STATE_MACHINE_NAME,
    STEP_FUNCTIONS,
    WORKFLOW_K8S_GROUP,
    WORKFLOW_LOG_RETENTION,
    WORKFLOW_TIMEOUT,
)
from infra.constructs.log_groups import service_log_group
from infra.constructs.python_function import PythonFunction
from infra.grants import (
    acknowledge,
    grant_build_logs,
    grant_cluster_access,
    grant_ecr_lookup,
    grant_pod_identity,
)


class JobWorkflow(Construct):
    """Step Lambdas, then the state machine with every ${Placeholder} substituted."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: dict[str, str],
        layers: list[lambda_.ILayerVersion],
        repository: ecr.IRepository,
        build_project: codebuild.IProject,
        cluster_name: str,
        trainer_image_tag: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.steps: dict[str, PythonFunction] = {}
        for step in STEP_FUNCTIONS:
            name = step.placeholder.removesuffix("FunctionArn")
            function = PythonFunction(
                self,
                name,
                handler=step.handler,
                environment=environment,
                timeout=step.timeout,
                layers=layers,
                description=f"Whetstone workflow step {name}",
            )
            if "ecr" in step.needs:
                grant_ecr_lookup(function.role, repository)
            if "build_logs" in step.needs:
                grant_build_logs(function.role, BUILD_PROJECT_NAME)
            if "eks" in step.needs:
                grant_cluster_access(function.role, cluster_name, WORKFLOW_K8S_GROUP)
            if "pod_identity" in step.needs:
                grant_pod_identity(function.role, cluster_name)
            self.steps[step.placeholder] = function

        self.log_group = service_log_group(
            self,
            "Logs",
            WORKFLOW_LOG_RETENTION,
            name=f"/aws/vendedlogs/states/{stack.stack_name}-jobs",
        )
        substitutions = {p: f.function.function_arn for p, f in self.steps.items()}
        substitutions["BuildProjectName"] = BUILD_PROJECT_NAME
        substitutions["TrainerImageTag"] = trainer_image_tag
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=STATE_MACHINE_NAME,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(STATE_MACHINE_FILE)),
            definition_substitutions=substitutions,
            timeout=WORKFLOW_TIMEOUT,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
        )
        for function in self.steps.values():
            function.function.grant_invoke(self.state_machine)
            logical_id = stack.get_logical_id(function.function.node.default_child)  # type: ignore[arg-type]
            acknowledge(
                self.state_machine,
                f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]",
                "lambda:InvokeFunction on the step function's versions and aliases (CDK's grant).",
            )
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments and the log delivery APIs of Step Functions take no resource.",
        )
        # codebuild:startBuild.sync: start, watch, stop the build, and the managed rule
        # Step Functions polls it with.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["codebuild:StartBuild", "codebuild:StopBuild", "codebuild:BatchGetBuilds"],
                resources=[build_project.project_arn],
            )
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    stack.format_arn(
                        service="events",
                        resource="rule",
                        resource_name="StepFunctionsGetEventForCodeBuildStartBuildRule",
                    )
                ],
            )
        )
