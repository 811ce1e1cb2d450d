"""The job workflow, trainer events, the reconciler and the S3 drop."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from infra.constants import BUILD_PROJECT_NAME, ECR_REPOSITORY_NAME, EVENT_BUS_NAME
from infra.constructs.dependencies_layer import DependenciesLayer
from infra.constructs.job_workflow import JobWorkflow
from infra.constructs.reconciler_schedule import ReconcilerSchedule
from infra.constructs.s3_drop_trigger import S3DropTrigger
from infra.constructs.trainer_events import TrainerEvents
from infra.grants import trainer_role_arn


class WorkflowStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        layer_dir: str | None,
        cluster_name: str,
        trainer_image_tag: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # The build stack's resources by their fixed names: no cross-stack references.
        repository = ecr.Repository.from_repository_name(
            self, "TrainerRepository", ECR_REPOSITORY_NAME
        )
        build_project = codebuild.Project.from_project_name(
            self, "TrainerImageBuild", BUILD_PROJECT_NAME
        )
        layers = DependenciesLayer(self, "Dependencies", layer_dir=layer_dir).layers
        environment = {
            "WHETSTONE_EVENT_BUS_NAME": EVENT_BUS_NAME,
            "WHETSTONE_CLUSTER_NAME": cluster_name,
            "WHETSTONE_ECR_REPOSITORY_URI": repository.repository_uri,
            "WHETSTONE_BUILD_PROJECT": BUILD_PROJECT_NAME,
            "WHETSTONE_TRAINER_ROLE_ARN": trainer_role_arn(),
        }
        self.workflow = JobWorkflow(
            self,
            "JobWorkflow",
            environment=environment,
            layers=layers,
            repository=repository,
            build_project=build_project,
            cluster_name=cluster_name,
            trainer_image_tag=trainer_image_tag,
        )
        self.trainer_events = TrainerEvents(self, "TrainerEvents", layers=layers)
        self.reconciler = ReconcilerSchedule(
            self,
            "Reconciler",
            environment=environment,
            layers=layers,
            cluster_name=cluster_name,
        )
        self.s3_drop = S3DropTrigger(self, "S3Drop", layers=layers)
