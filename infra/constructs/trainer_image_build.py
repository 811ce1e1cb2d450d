"""The CodeBuild project that builds the trainer image (trainer_container/buildspec.yml)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constants import (
    BUILD_PROJECT_NAME,
    BUILD_TIMEOUT,
    BUILDSPEC_FILE,
    FUNCTION_LOG_RETENTION,
)
from infra.constructs.log_groups import service_log_group
from infra.grants import acknowledge, artifacts_bucket_name, artifacts_bucket_name_for_nag


class TrainerImageBuild(Construct):
    """Builds from the repository source the deploy uploads to the artifacts bucket."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repository: ecr.IRepository,
        source_key: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            description="Whetstone trainer image build artifacts",
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.log_group = service_log_group(
            self, "Logs", FUNCTION_LOG_RETENTION, name=f"/aws/codebuild/{BUILD_PROJECT_NAME}"
        )
        self.project = codebuild.Project(
            self,
            "Project",
            project_name=BUILD_PROJECT_NAME,
            source=codebuild.Source.s3(
                bucket=s3.Bucket.from_bucket_name(self, "Source", artifacts_bucket_name()),
                path=source_key,
            ),
            build_spec=codebuild.BuildSpec.from_source_filename(
                BUILDSPEC_FILE.relative_to(BUILDSPEC_FILE.parents[1]).as_posix()
            ),
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                compute_type=codebuild.ComputeType.LARGE,
                privileged=True,  # docker build
            ),
            environment_variables={
                "ECR_REPOSITORY_URI": codebuild.BuildEnvironmentVariable(
                    value=repository.repository_uri
                ),
            },
            encryption_key=self.key,
            timeout=BUILD_TIMEOUT,
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.log_group)
            ),
        )
        repository.grant_pull_push(self.project)
        repository.grant(self.project, "ecr:DescribeImages")
        stack = Stack.of(self)
        project = stack.get_logical_id(self.project.node.default_child)  # type: ignore[arg-type]
        for finding, reason in (
            ("Action::kms:GenerateDataKey*", "CDK's grant of the build's own encryption key."),
            ("Action::kms:ReEncrypt*", "CDK's grant of the build's own encryption key."),
            (
                f"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
                f"/aws/codebuild/<{project}>:*",
                "Each build writes its own stream of the project's log group.",
            ),
            (
                f"Resource::arn:<AWS::Partition>:codebuild:<AWS::Region>:<AWS::AccountId>:"
                f"report-group/<{project}>-*",
                "CodeBuild's default test report groups of this project.",
            ),
            (
                f"Resource::arn:<AWS::Partition>:s3:::{artifacts_bucket_name_for_nag()}/*",
                "The source archive key is chosen by the deploy step.",
            ),
            ("Resource::*", "ecr:GetAuthorizationToken (docker login) takes no resource."),
            ("Action::s3:GetObject*", "CDK's read grant on the bucket holding the source archive."),
            ("Action::s3:GetBucket*", "CDK's read grant on the bucket holding the source archive."),
            ("Action::s3:List*", "CDK's read grant on the bucket holding the source archive."),
        ):
            acknowledge(self.project, f"AwsSolutions-IAM5[{finding}]", reason)
