"""Build the platform (the adapters behind the ports) for the configured runtime, once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from whetstone.core.job import JobRecord
from whetstone.observability import logger
from whetstone.ports import Orchestrator
from whetstone.service.platform import Platform
from whetstone.settings import Settings, get_settings

if TYPE_CHECKING:
    from whetstone.adapters.aws.codebuild_logs import CodeBuildLogs
    from whetstone.adapters.aws.ecr_images import EcrImages
    from whetstone.adapters.aws.eks_compute import EksCompute, JobSettings
    from whetstone.adapters.aws.eks_deployer import EksDeployer
    from whetstone.adapters.aws.sfn_orchestrator import StepFunctionsOrchestrator


class NoWorkflowOrchestrator:
    """Where no workflow runner is configured (aws until its state machine is wired):
    jobs are stored and stay pending."""

    def start(self, job: JobRecord) -> None:
        logger.warning("no workflow runner configured; job stays pending", job_id=job.job_id)

    def stop(self, job: JobRecord) -> None:
        logger.warning("no workflow runner configured; nothing to stop", job_id=job.job_id)


def _job_settings(settings: Settings) -> JobSettings:
    from whetstone.adapters.aws.eks_compute import JobSettings

    return JobSettings(
        namespace_prefix=settings.namespace_prefix,
        event_bus_name=settings.event_bus_name,
        region=settings.aws_region,
        ttl_s=settings.job_ttl_s,
        deadline_factor=settings.deadline_factor,
        deadline_floor_s=settings.deadline_floor_s,
        grace_s=int(settings.stop_grace_s),
        max_active_gpus=settings.max_active_gpus,
        max_active_jobs=settings.max_active_jobs,
    )


def _eks_deployer(settings: Settings, platform: Platform) -> EksDeployer:
    """vLLM on EKS; the cluster clients are built on the first deploy call, not at start."""
    from whetstone.adapters.aws.eks_deployer import (
        EksDeployer,
        ServingSettings,
        connect_to_cluster,
    )
    from whetstone.service.deployments import saved_golden_answer

    return EksDeployer(
        connect_to_cluster(settings.cluster_name, settings.aws_region, settings.trainer_role_arn),
        ServingSettings(
            cluster=_job_settings(settings), ready_timeout_s=settings.serving_ready_timeout_s
        ),
        expected_golden=lambda job: saved_golden_answer(platform, job),
    )


def build_platform(settings: Settings) -> Platform:
    if settings.runtime == "aws":
        from whetstone.adapters.aws.cloudwatch_logs import CloudWatchLogStore
        from whetstone.adapters.aws.dynamodb_jobs import DynamoDBJobStore
        from whetstone.adapters.aws.s3_blobs import S3BlobStore

        orchestrator: Orchestrator = NoWorkflowOrchestrator()
        if settings.state_machine_arn:
            from whetstone.adapters.aws.sfn_orchestrator import StepFunctionsOrchestrator

            orchestrator = StepFunctionsOrchestrator(
                settings.state_machine_arn, poll_interval_s=settings.poll_interval_s
            )
        platform = Platform(
            jobs=DynamoDBJobStore(settings.table_name),
            logs=CloudWatchLogStore(settings.log_group),
            blobs=S3BlobStore(settings.bucket),
            orchestrator=orchestrator,
            settings=settings,
        )
        platform.deployer = _eks_deployer(settings, platform)
        return platform
    from whetstone.adapters.local.file_logs import FileLogStore
    from whetstone.adapters.local.folder_blobs import FolderBlobStore
    from whetstone.adapters.local.process_deployer import ProcessDeployer
    from whetstone.adapters.local.python_image import CurrentPythonImage
    from whetstone.adapters.local.runner import LocalRunner
    from whetstone.adapters.local.sqlite_jobs import SQLiteJobStore
    from whetstone.adapters.local.subprocess_compute import SubprocessCompute
    from whetstone.service.ingest import ingest_event

    home = settings.home
    platform = Platform(
        jobs=SQLiteJobStore(home / "jobs.sqlite3"),
        logs=FileLogStore(home / "logs"),
        blobs=FolderBlobStore(home / "blobs"),
        orchestrator=NoWorkflowOrchestrator(),
        settings=settings,
        deployer=ProcessDeployer(
            home / "run" / "deployments", ready_timeout_s=settings.deploy_ready_timeout_s
        ),
    )
    compute = SubprocessCompute(
        lambda event: ingest_event(platform, event),
        platform.logs,
        home / "run",
        grace_s=settings.stop_grace_s,
    )
    platform.orchestrator = LocalRunner(
        platform, compute, CurrentPythonImage(), concurrency=settings.local_concurrency
    )
    return platform


@lru_cache(maxsize=1)
def get_platform() -> Platform:
    return build_platform(get_settings())


@dataclass
class AwsWorkflowPorts:
    """What the aws workflow Lambdas use beside the platform."""

    compute: EksCompute
    images: EcrImages
    build_logs: CodeBuildLogs
    orchestrator: StepFunctionsOrchestrator | None


def build_aws_workflow_ports(settings: Settings, platform: Platform) -> AwsWorkflowPorts:
    from whetstone.adapters.aws.codebuild_logs import CodeBuildLogs
    from whetstone.adapters.aws.ecr_images import EcrImages
    from whetstone.adapters.aws.eks_compute import EksCompute, KubernetesApi, PodIdentity
    from whetstone.adapters.aws.sfn_orchestrator import StepFunctionsOrchestrator

    job_settings = _job_settings(settings)
    pod_identity = (
        PodIdentity(settings.cluster_name, settings.trainer_role_arn)
        if settings.trainer_role_arn
        else None
    )
    compute = EksCompute(
        KubernetesApi(settings.cluster_name, region=settings.aws_region),
        job_settings,
        platform.logs,
        pod_identity=pod_identity,
    )
    orchestrator = (
        StepFunctionsOrchestrator(
            settings.state_machine_arn, poll_interval_s=settings.poll_interval_s
        )
        if settings.state_machine_arn
        else None
    )
    return AwsWorkflowPorts(
        compute=compute,
        images=EcrImages(settings.ecr_repository_uri, project=settings.build_project),
        build_logs=CodeBuildLogs(),
        orchestrator=orchestrator,
    )


@lru_cache(maxsize=1)
def get_aws_workflow_ports() -> AwsWorkflowPorts:
    return build_aws_workflow_ports(get_settings(), get_platform())
