"""The IAM role vLLM pods get through EKS Pod Identity: reads of jobs' models, nothing else.

The deployer associates each deploy's service account with this role and a session policy
that narrows it to that job's model (`whetstone.adapters.aws.kube.serving_identity`); EKS
allows a session policy only without session tags, so the role itself cannot name the job:
it may read any job's `output/model/` and no other key, and never write or delete.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.constants import JOBS_PREFIX
from infra.constructs.trainer_role import pod_role
from infra.grants import (
    acknowledge,
    artifacts_bucket_name,
    artifacts_bucket_name_for_nag,
    serving_role_name,
)

MODELS_PATTERN = f"{JOBS_PREFIX}*/*/output/model/*"


class ServingRole(Construct):
    """Assumed by pods of `cluster_name` only; reads jobs' models only."""

    def __init__(self, scope: Construct, construct_id: str, *, cluster_name: str) -> None:
        super().__init__(scope, construct_id)
        description = "Whetstone vLLM pods (EKS Pod Identity): read their job's model"
        self.role = pod_role(self, cluster_name, serving_role_name(), description)
        bucket = f"arn:{Aws.PARTITION}:s3:::{artifacts_bucket_name()}"
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{bucket}/{MODELS_PATTERN}"])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket],
                conditions={"StringLike": {"s3:prefix": [MODELS_PATTERN]}},
            )
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::"
            f"{artifacts_bucket_name_for_nag()}/{MODELS_PATTERN}]",
            "Reads of jobs' model folders only; each deploy's association narrows it to its "
            "own job's model with a session policy (EKS allows one only without session tags, "
            "so the role cannot name the job itself).",
        )
