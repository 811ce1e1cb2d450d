"""The ECR repository of trainer images (content-addressed, immutable tags)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from infra.constants import ECR_KEEP_IMAGES, ECR_REPOSITORY_NAME, ECR_UNTAGGED_EXPIRY


class TrainerRepository(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.repository = ecr.Repository(
            self,
            "Repository",
            repository_name=ECR_REPOSITORY_NAME,
            image_scan_on_push=True,
            # A tag is a hash of the trainer sources: the same tag must never change content.
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.AES_256,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    rule_priority=1,
                    description="drop untagged layers of failed pushes",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=ECR_UNTAGGED_EXPIRY,
                ),
                ecr.LifecycleRule(
                    rule_priority=2,
                    description="keep the most recent trainer versions",
                    tag_status=ecr.TagStatus.ANY,
                    max_image_count=ECR_KEEP_IMAGES,
                ),
            ],
        )
