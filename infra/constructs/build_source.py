"""Who writes the trainer image's build source: one role, assumed by the deploy.

The bucket policy denies every write under the build prefix to any other principal (the
Lambdas' roles included, whose grants cover the bucket's objects), so a source archive
in the bucket is one the deploy put there.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constants import BUILD_SOURCE_KEY, BUILD_SOURCE_PREFIX, BUILD_SOURCE_ROLE_PREFIX
from infra.grants import artifacts_bucket_name

# Every action that changes or removes an object's content.
WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion")


def build_source_role_name() -> str:
    """IAM names are global: the region keeps two deployments of one account apart."""
    return f"{BUILD_SOURCE_ROLE_PREFIX}-{Aws.REGION}"


def build_source_role_arn() -> str:
    return f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{build_source_role_name()}"


def deny_build_source_writes_but_the_deploy_role(bucket: s3.Bucket) -> None:
    """An explicit deny overrides any identity policy's allow, however broad."""
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="OnlyTheDeployRoleWritesTheBuildSource",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(WRITE_ACTIONS),
            resources=[bucket.arn_for_objects(f"{BUILD_SOURCE_PREFIX}*")],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": build_source_role_arn()}},
        )
    )


class BuildSourceRole(Construct):
    """The deploy role: principals of this account whose own policy lets them assume it
    upload the source archive, and that one key is all it may write."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        source = f"arn:{Aws.PARTITION}:s3:::{artifacts_bucket_name()}/{BUILD_SOURCE_KEY}"
        self.role = iam.Role(
            self,
            "Role",
            role_name=build_source_role_name(),
            assumed_by=iam.AccountRootPrincipal(),
            description="Uploads the trainer image's build source (docs/infra.md, deploy)",
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[source]))
