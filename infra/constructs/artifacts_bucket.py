"""The S3 bucket of datasets, plans, checkpoints and models."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constants import (
    ABORTED_UPLOAD_EXPIRY,
    INCOMING_EXPIRY,
    INCOMING_PREFIX,
    JOBS_PREFIX,
    JOBS_TIERING_AFTER,
    NONCURRENT_VERSION_EXPIRY,
)
from infra.constructs.build_source import deny_build_source_writes_but_the_deploy_role
from infra.grants import acknowledge, artifacts_bucket_name


class ArtifactsBucket(Construct):
    """Private, encrypted, TLS-only, versioned; job artifacts tier down, drops expire."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=artifacts_bucket_name(),
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=ABORTED_UPLOAD_EXPIRY,
                    noncurrent_version_expiration=NONCURRENT_VERSION_EXPIRY,
                ),
                s3.LifecycleRule(
                    id="expire-incoming-drops",
                    prefix=INCOMING_PREFIX,
                    expiration=INCOMING_EXPIRY,
                ),
                s3.LifecycleRule(
                    id="tier-job-artifacts",
                    prefix=JOBS_PREFIX,
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                            transition_after=JOBS_TIERING_AFTER,
                        )
                    ],
                ),
            ],
        )
        deny_build_source_writes_but_the_deploy_role(self.bucket)
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "Every access goes through the platform's Lambdas (logged and traced) or presigned "
            "URLs they issue; enable CloudTrail S3 data events for an object-level audit trail.",
        )
