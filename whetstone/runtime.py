"""Build the platform (the adapters behind the ports) for the configured runtime, once.

Each runtime has one factory that builds every port in one pass and returns a frozen
Platform. The ports that call back into the platform (the local runner, the trainer
events of local compute, the golden answer a deployment checks) hold a PlatformRef,
bound once the platform exists. The aws workflow's own ports (EKS compute, images,
build logs) are a separate frozen object, built only by the Lambdas that run the
workflow (docs/workflow.md, "Wiring").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from whetstone.service.platform import Platform, PlatformRef
from whetstone.settings import Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from whetstone.adapters.aws.codebuild_logs import CodeBuildLogs
    from whetstone.adapters.aws.dynamodb_throttle import DynamoDBRequestThrottle
    from whetstone.adapters.aws.ecr_images import EcrImages
    from whetstone.adapters.aws.eks_compute import EksCompute, JobSettings
    from whetstone.adapters.aws.eks_deployer import EksDeployer
    from whetstone.adapters.aws.sfn_orchestrator import StepFunctionsOrchestrator


class MissingSettingError(RuntimeError):
    """A setting the configured runtime cannot start without is not set."""

    def __init__(self, variable: str, why: str) -> None:
        super().__init__(f"{variable} is not set: {why}")
        self.variable = variable


def build_platform(settings: Settings, **ports: Any) -> Platform:
    """The platform of the runtime `settings` names; `ports` (e.g. orchestrator=...) take the
    place of the runtime's own, for tests and embedders, before the ports that call back
    into the platform are bound to it."""
    if settings.runtime == "aws":
        return build_aws_platform(settings, **ports)
    return build_local_platform(settings, **ports)


def build_local_platform(settings: Settings, **ports: Any) -> Platform:
    """SQLite, folders, one trainer subprocess per job and a local model server."""
    from whetstone.adapters.local.file_logs import FileLogStore
    from whetstone.adapters.local.folder_blobs import FolderBlobStore
    from whetstone.adapters.local.process_deployer import ProcessDeployer
    from whetstone.adapters.local.python_image import CurrentPythonImage
    from whetstone.adapters.local.runner import LocalRunner
    from whetstone.adapters.local.sqlite_jobs import SQLiteJobStore
    from whetstone.adapters.local.subprocess_compute import SubprocessCompute
    from whetstone.service.ingest import ingest_event

    home = settings.home
    ref = PlatformRef()
    logs = FileLogStore(home / "logs")
    compute = SubprocessCompute(
        lambda event: ingest_event(ref.get(), event),
        logs,
        home / "run",
        grace_s=settings.stop_grace_s,
    )
    platform = Platform(
        jobs=SQLiteJobStore(home / "jobs.sqlite3"),
        logs=logs,
        blobs=FolderBlobStore(home / "blobs"),
        orchestrator=LocalRunner(
            ref, compute, CurrentPythonImage(), concurrency=settings.local_concurrency
        ),
        settings=settings,
        deployer=ProcessDeployer(
            home / "run" / "deployments",
            ready_timeout_s=settings.deploy_ready_timeout_s,
            tokens_home=home,
        ),
    )
    platform = replace(platform, **ports)
    ref.bind(platform)
    return platform


def build_aws_platform(settings: Settings, **ports: Any) -> Platform:
    """DynamoDB, S3, CloudWatch Logs, Step Functions and vLLM on EKS. Without the state
    machine's ARN it raises MissingSettingError: no job could ever leave pending."""
    import boto3

    from whetstone.adapters.aws.cloudwatch_logs import CloudWatchLogStore
    from whetstone.adapters.aws.dynamodb_api_keys import DynamoDBApiKeyStore
    from whetstone.adapters.aws.dynamodb_jobs import DynamoDBJobStore
    from whetstone.adapters.aws.s3_blobs import S3BlobStore

    orchestrator = _step_functions(settings)
    ref = PlatformRef()
    dynamodb = boto3.client("dynamodb")
    platform = Platform(
        jobs=DynamoDBJobStore(settings.table_name, dynamodb),
        logs=CloudWatchLogStore(settings.log_group),
        blobs=S3BlobStore(settings.bucket),
        orchestrator=orchestrator,
        settings=settings,
        deployer=_eks_deployer(settings, ref),
        api_keys=DynamoDBApiKeyStore(settings.table_name, dynamodb),
        throttle=_throttle(settings, dynamodb),
    )
    platform = replace(platform, **ports)
    ref.bind(platform)
    return platform


@lru_cache(maxsize=1)
def get_platform() -> Platform:
    return build_platform(get_settings())


def _throttle(settings: Settings, dynamodb: DynamoDBClient) -> DynamoDBRequestThrottle | None:
    from whetstone.adapters.aws.dynamodb_throttle import DynamoDBRequestThrottle

    if settings.org_requests_per_window == 0:
        return None
    return DynamoDBRequestThrottle(
        settings.table_name,
        dynamodb,
        limit=settings.org_requests_per_window,
        window_s=settings.org_throttle_window_s,
    )


def _step_functions(settings: Settings) -> StepFunctionsOrchestrator:
    from whetstone.adapters.aws.sfn_orchestrator import StepFunctionsOrchestrator

    if not settings.state_machine_arn:
        raise MissingSettingError(
            "WHETSTONE_STATE_MACHINE_ARN",
            "the aws runtime runs every job on its workflow state machine",
        )
    return StepFunctionsOrchestrator(settings.state_machine_arn)


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


def _eks_deployer(settings: Settings, platform: PlatformRef) -> EksDeployer:
    """vLLM on EKS; the cluster clients are built on the first deploy call, not at start."""
    from whetstone.adapters.aws.eks_deployer import (
        EksDeployer,
        ServingSettings,
        connect_to_cluster,
    )
    from whetstone.service.deployments import saved_golden_answer

    return EksDeployer(
        connect_to_cluster(settings.cluster_name, settings.aws_region, settings.serving_role_arn),
        ServingSettings(
            cluster=_job_settings(settings), ready_timeout_s=settings.serving_ready_timeout_s
        ),
        expected_golden=lambda job: saved_golden_answer(platform.get(), job),
    )


@dataclass(frozen=True)
class AwsWorkflowPorts:
    """What the aws workflow Lambdas use beside the platform. Apart from it because only
    they need it: the API would pay for its EKS and STS clients at every cold start."""

    compute: EksCompute
    images: EcrImages
    build_logs: CodeBuildLogs
    orchestrator: StepFunctionsOrchestrator


def build_aws_workflow_ports(settings: Settings, platform: Platform) -> AwsWorkflowPorts:
    """The workflow's ports on `platform` (built by build_aws_platform from `settings`)."""
    from whetstone.adapters.aws.codebuild_logs import CodeBuildLogs
    from whetstone.adapters.aws.ecr_images import EcrImages
    from whetstone.adapters.aws.eks_compute import EksCompute, KubernetesApi, PodIdentity
    from whetstone.adapters.aws.sfn_orchestrator import StepFunctionsOrchestrator

    if not isinstance(platform.orchestrator, StepFunctionsOrchestrator):
        raise TypeError("the aws workflow runs on the platform of the aws runtime")
    pod_identity = (
        PodIdentity(settings.cluster_name, settings.trainer_role_arn)
        if settings.trainer_role_arn
        else None
    )
    compute = EksCompute(
        KubernetesApi(settings.cluster_name, region=settings.aws_region),
        _job_settings(settings),
        platform.logs,
        pod_identity=pod_identity,
    )
    return AwsWorkflowPorts(
        compute=compute,
        images=EcrImages(settings.ecr_repository_uri, project=settings.build_project),
        build_logs=CodeBuildLogs(),
        orchestrator=platform.orchestrator,
    )


@lru_cache(maxsize=1)
def get_aws_workflow_ports() -> AwsWorkflowPorts:
    return build_aws_workflow_ports(get_settings(), get_platform())
