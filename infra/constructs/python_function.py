"""A Whetstone Lambda: its own role and log group, X-Ray tracing, the shared code asset, and
access to the jobs' table, blobs and logs."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constants import FUNCTION_LOG_RETENTION, LAMBDA_MEMORY_MB
from infra.constructs.log_groups import service_log_group
from infra.grants import acknowledge, grant_job_data, job_environment, state_machine_arn
from infra.lambda_code import LAMBDA_RUNTIME, function_code


class PythonFunction(Construct):
    """One handler of functions/, with a role that may touch the job data only (or, without
    `job_data`, nothing): callers grant what else it needs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        environment: Mapping[str, str],
        timeout: Duration,
        layers: list[lambda_.ILayerVersion],
        description: str,
        job_data: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = service_log_group(self, "Logs", FUNCTION_LOG_RETENTION)
        # No AWSLambdaBasicExecutionRole: the role may write to this log group only.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} ({handler})",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=LAMBDA_RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=handler,
            code=function_code(),
            layers=layers,
            role=self.role,
            log_group=self.log_group,
            memory_size=LAMBDA_MEMORY_MB,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            description=description,
            # Every function builds the aws platform, which refuses to start without the ARN.
            environment={
                "WHETSTONE_RUNTIME": "aws",
                "WHETSTONE_STATE_MACHINE_ARN": state_machine_arn(Stack.of(self)),
                **job_environment(),
                **environment,
            },
        )
        if job_data:
            grant_job_data(self.role)
        acknowledge(
            self,
            "AwsSolutions-L1",
            "Python 3.11 is the version the project supports and tests (pyproject "
            "requires-python, the dependency layer is built for it).",
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments and PutTelemetryRecords take no resource (active tracing).",
        )
