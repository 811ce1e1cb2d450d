"""The IAM role trainer pods get through EKS Pod Identity: their job's S3 prefix, the bus."""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.constants import EVENT_BUS_NAME, JOBS_PREFIX
from infra.grants import (
    acknowledge,
    artifacts_bucket_name,
    artifacts_bucket_name_for_nag,
    trainer_role_name,
)

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"
# EKS Pod Identity tags each session; whetstone.adapters.aws.kube names a job's
# service account after the job, so this tag is the job id.
SERVICE_ACCOUNT_TAG = "${aws:PrincipalTag/kubernetes-service-account}"
CLUSTER_TAG = "aws:PrincipalTag/eks-cluster-name"
# The trainer reads its plan and splits, writes checkpoints and the model, and prunes old
# checkpoints (trainer_container/trainer/storage.py).
_OBJECT_ACTIONS = ("s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject")


def job_objects_pattern() -> str:
    """Keys of the session's job only: jobs/<any org>/<job id>/... (job ids are unique)."""
    return f"{JOBS_PREFIX}*/{SERVICE_ACCOUNT_TAG}/*"


def pod_role(scope: Construct, cluster_name: str, role_name: str, description: str) -> iam.Role:
    """A role only EKS Pod Identity may assume, for pods of `cluster_name` in this account."""
    cluster_arn = Stack.of(scope).format_arn(
        service="eks", resource="cluster", resource_name=cluster_name
    )
    principal = iam.ServicePrincipal(POD_IDENTITY_PRINCIPAL).with_conditions(
        {
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnEquals": {"aws:SourceArn": cluster_arn},
        }
    )
    assumed_by = iam.SessionTagsPrincipal(principal)
    return iam.Role(
        scope, "Role", role_name=role_name, assumed_by=assumed_by, description=description
    )


class TrainerRole(Construct):
    """Assumed by pods of `cluster_name` only; S3 scoped per job by the session tag."""

    def __init__(self, scope: Construct, construct_id: str, *, cluster_name: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = pod_role(
            self,
            cluster_name,
            trainer_role_name(),
            "Whetstone trainer pods (EKS Pod Identity): their job's S3 prefix, the trainer "
            "event bus",
        )
        same_cluster = {"StringEquals": {CLUSTER_TAG: cluster_name}}
        bucket = f"arn:{Aws.PARTITION}:s3:::{artifacts_bucket_name()}"
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=list(_OBJECT_ACTIONS),
                resources=[f"{bucket}/{job_objects_pattern()}"],
                conditions=same_cluster,
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket],
                conditions={
                    **same_cluster,
                    "StringLike": {
                        "s3:prefix": [
                            f"{JOBS_PREFIX}*/{SERVICE_ACCOUNT_TAG}/",
                            job_objects_pattern(),
                        ]
                    },
                },
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["events:PutEvents"],
                resources=[
                    stack.format_arn(
                        service="events", resource="event-bus", resource_name=EVENT_BUS_NAME
                    )
                ],
                conditions=same_cluster,
            )
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::"
            f"{artifacts_bucket_name_for_nag()}/{JOBS_PREFIX}*/"
            "<aws:PrincipalTag/kubernetes-service-account>/*]",
            "The key pattern jobs/*/<kubernetes-service-account session tag>/* admits one job: "
            "each trainer's service account is named after its (unique) job id; the org part "
            "is a wildcard because namespaces carry a slug of the org, not the org id.",
        )
