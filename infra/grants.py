"""What a Whetstone Lambda may touch: the job's table, blobs and logs, and per-step extras.

ARNs are built from the fixed names in infra.constants, so a consuming stack needs no
export of the data stack and each wildcard cdk-nag reports has an id known in advance.
"""

from __future__ import annotations

from typing import cast

from aws_cdk import Acknowledgment, ArnFormat, Aws, Stack, Validations
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from infra.constants import (
    ARTIFACTS_BUCKET_PREFIX,
    GSI_NAMES,
    JOB_LOG_GROUP,
    SERVING_ROLE_PREFIX,
    STATE_MACHINE_NAME,
    TABLE_NAME,
    TRAINER_ROLE_PREFIX,
)
from infra.constructs.cluster_access_entry import ClusterAccessEntry

# The calls of whetstone.adapters.aws.dynamodb_jobs.DynamoDBJobStore.
_TABLE_ACTIONS = (
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
)
# S3BlobStore: objects (presigned URLs are signed with the Lambda's own role); deleting a
# prefix removes every version of its objects.
_OBJECT_ACTIONS = (
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:GetObject",
    "s3:PutObject",
)
# CloudWatchLogStore.
_JOB_LOG_ACTIONS = (
    "logs:CreateLogStream",
    "logs:DeleteLogStream",
    "logs:DescribeLogStreams",
    "logs:FilterLogEvents",
    "logs:GetLogEvents",
    "logs:PutLogEvents",
)


def artifacts_bucket_name() -> str:
    return f"{ARTIFACTS_BUCKET_PREFIX}-{Aws.ACCOUNT_ID}-{Aws.REGION}"


def artifacts_bucket_name_for_nag() -> str:
    """The bucket name as cdk-nag writes it in a finding id."""
    return f"{ARTIFACTS_BUCKET_PREFIX}-<AWS::AccountId>-<AWS::Region>"


def job_environment() -> dict[str, str]:
    return {
        "WHETSTONE_TABLE_NAME": TABLE_NAME,
        "WHETSTONE_BUCKET": artifacts_bucket_name(),
        "WHETSTONE_LOG_GROUP": JOB_LOG_GROUP,
    }


def state_machine_arn(stack: Stack) -> str:
    return stack.format_arn(
        service="states",
        resource="stateMachine",
        resource_name=STATE_MACHINE_NAME,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason))


def _allow_named_at_run_time(
    role: iam.Role,
    actions: tuple[str, ...],
    *,
    service: str,
    resource: str,
    name: str,
    reason: str,
) -> None:
    """Allow `actions` on the ARN `service:…:resource:name`, whose wildcard stands for names
    given at run time, and acknowledge the finding cdk-nag reports for that wildcard."""
    role.add_to_policy(
        iam.PolicyStatement(
            actions=list(actions),
            resources=[
                Stack.of(role).format_arn(
                    service=service,
                    resource=resource,
                    resource_name=name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )
    )
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:{service}:<AWS::Region>:"
        f"<AWS::AccountId>:{resource}:{name}]",
        reason,
    )


def grant_job_data(role: iam.Role) -> None:
    """The table (and its GSIs), the artifacts bucket's objects, the job log group."""
    stack = Stack.of(role)
    table = stack.format_arn(service="dynamodb", resource="table", resource_name=TABLE_NAME)
    role.add_to_policy(
        iam.PolicyStatement(
            actions=list(_TABLE_ACTIONS),
            resources=[table, *(f"{table}/index/{name}" for name in GSI_NAMES)],
        )
    )
    bucket = f"arn:{Aws.PARTITION}:s3:::{artifacts_bucket_name()}"
    role.add_to_policy(
        iam.PolicyStatement(actions=["s3:ListBucket", "s3:ListBucketVersions"], resources=[bucket])
    )
    role.add_to_policy(
        iam.PolicyStatement(actions=list(_OBJECT_ACTIONS), resources=[f"{bucket}/*"])
    )
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{artifacts_bucket_name_for_nag()}/*]",
        "Job objects are keyed jobs/<org>/<job>/... and the organization is known per "
        "request only; the service layer scopes every key to the caller's organization.",
    )
    _allow_named_at_run_time(
        role,
        _JOB_LOG_ACTIONS,
        service="logs",
        resource="log-group",
        name=f"{JOB_LOG_GROUP}:*",
        reason="Log streams are created per job and source at run time inside the one job "
        "log group.",
    )


def grant_api_key_lookup(role: iam.Role) -> None:
    """DynamoDBApiKeyStore as the authorizer uses it: find a key by its hash, note its use."""
    table = Stack.of(role).format_arn(
        service="dynamodb", resource="table", resource_name=TABLE_NAME
    )
    role.add_to_policy(
        iam.PolicyStatement(actions=["dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[table])
    )


def grant_start_workflow(role: iam.Role) -> None:
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["states:StartExecution"], resources=[state_machine_arn(Stack.of(role))]
        )
    )


def grant_task_callbacks(role: iam.Role) -> None:
    """StepFunctionsOrchestrator's TaskCallbacks: answer or keep alive the workflow's wait for
    a trainer stage (ingest, the reconciler, the API's stop)."""
    role.add_to_policy(
        iam.PolicyStatement(
            actions=[
                "states:SendTaskSuccess",
                "states:SendTaskFailure",
                "states:SendTaskHeartbeat",
            ],
            resources=[state_machine_arn(Stack.of(role))],
        )
    )


def grant_manage_workflow(role: iam.Role) -> None:
    """StepFunctionsOrchestrator as the reconciler uses it: start, list, describe, stop, and
    answer a stage whose pod is gone."""
    grant_start_workflow(role)
    grant_task_callbacks(role)
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["states:ListExecutions"], resources=[state_machine_arn(Stack.of(role))]
        )
    )
    _allow_named_at_run_time(
        role,
        ("states:DescribeExecution", "states:StopExecution"),
        service="states",
        resource="execution",
        name=f"{STATE_MACHINE_NAME}:*",
        reason="Executions are named after jobs at run time; the reconciler stops any of this "
        "state machine's executions whose job ended.",
    )


def grant_ecr_lookup(role: iam.Role, repository: ecr.IRepository) -> None:
    """EcrImages.find: DescribeImages on the trainer repository."""
    repository.grant(role, "ecr:DescribeImages")


def grant_build_logs(role: iam.Role, project_name: str) -> None:
    """CodeBuildLogs: GetLogEvents on the build project's log group."""
    _allow_named_at_run_time(
        role,
        ("logs:GetLogEvents",),
        service="logs",
        resource="log-group",
        name=f"/aws/codebuild/{project_name}:log-stream:*",
        reason="Each build writes its own log stream; the step copies the stream of the job's "
        "build.",
    )


def grant_cluster_access(role: iam.Role, cluster_name: str, group: str) -> None:
    """KubernetesApi: DescribeCluster (endpoint, CA), and the cluster's access entry that
    puts the role into the Kubernetes `group` (its RBAC: infra.constructs.cluster_rbac)."""
    scope = cast(Construct, role.node.scope)  # the Lambda's construct
    ClusterAccessEntry(scope, "ClusterAccess", role=role, cluster_name=cluster_name, group=group)
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["eks:DescribeCluster"],
            resources=[
                Stack.of(role).format_arn(
                    service="eks", resource="cluster", resource_name=cluster_name
                )
            ],
        )
    )


def trainer_role_name() -> str:
    """The trainer pods' role; IAM is global, so the region is part of the name."""
    return f"{TRAINER_ROLE_PREFIX}-{Aws.REGION}"


def trainer_role_arn() -> str:
    return f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{trainer_role_name()}"


def serving_role_name() -> str:
    """The vLLM pods' role; IAM is global, so the region is part of the name."""
    return f"{SERVING_ROLE_PREFIX}-{Aws.REGION}"


def serving_role_arn() -> str:
    return f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{serving_role_name()}"


def grant_pod_identity(role: iam.Role, cluster_name: str) -> None:
    """PodIdentity: associate a job's service account with the trainer role, and undo it."""
    stack = Stack.of(role)
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["eks:CreatePodIdentityAssociation", "eks:ListPodIdentityAssociations"],
            resources=[
                stack.format_arn(service="eks", resource="cluster", resource_name=cluster_name)
            ],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["eks:DeletePodIdentityAssociation"],
            resources=[
                stack.format_arn(
                    service="eks",
                    resource="podidentityassociation",
                    resource_name=f"{cluster_name}/*",
                )
            ],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[trainer_role_arn(), serving_role_arn()],
            conditions={"StringEquals": {"iam:PassedToService": "pods.eks.amazonaws.com"}},
        )
    )
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:eks:<AWS::Region>:<AWS::AccountId>"
        f":podidentityassociation/{cluster_name}/*]",
        "Pod Identity associations get ids at run time (one per job); the step deletes the "
        "ones of the job's service account in this cluster only.",
    )
