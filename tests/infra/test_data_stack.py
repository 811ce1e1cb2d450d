"""The data stack: the jobs table as the DynamoDB adapter defines it, the artifacts bucket."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template

from infra.constants import INCOMING_PREFIX, JOB_LOG_GROUP, TABLE_NAME
from whetstone.adapters.aws.dynamodb_requests import table_definition

STACK = "WhetstoneData"


def test_table_keys_and_indexes_equal_the_adapters_table_definition(synthesized: Any) -> None:
    # Given the CreateTable request the adapter (and the moto tests) use
    expected = table_definition(TABLE_NAME)
    # When the synthesized table is read
    (table,) = synthesized.resources("WhetstoneData", "AWS::DynamoDB::GlobalTable").values()
    props = table["Properties"]
    # Then name, attributes, keys, GSIs and billing are the same
    assert props["TableName"] == expected["TableName"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(
        expected["AttributeDefinitions"], key=str
    )
    assert props["KeySchema"] == expected["KeySchema"]
    assert props["GlobalSecondaryIndexes"] == expected["GlobalSecondaryIndexes"]
    assert props["BillingMode"] == expected["BillingMode"]


def test_table_has_point_in_time_recovery_encryption_and_retention(template: Template) -> None:
    template.has_resource(
        "AWS::DynamoDB::GlobalTable",
        {
            "DeletionPolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "SSESpecification": {"SSEEnabled": True},
                    "Replicas": [
                        Match.object_like(
                            {
                                "PointInTimeRecoverySpecification": {
                                    "PointInTimeRecoveryEnabled": True
                                },
                                "DeletionProtectionEnabled": True,
                            }
                        )
                    ],
                }
            ),
        },
    )


def test_bucket_is_encrypted_private_and_versioned(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
        },
    )


def test_bucket_policy_denies_requests_without_tls(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_lifecycle_expires_drops_and_tiers_job_artifacts(synthesized: Any) -> None:
    (bucket,) = synthesized.resources("WhetstoneData", "AWS::S3::Bucket").values()
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-incoming-drops"]["Prefix"] == INCOMING_PREFIX
    assert rules["expire-incoming-drops"]["ExpirationInDays"] == 30
    assert rules["tier-job-artifacts"]["Transitions"] == [
        {"StorageClass": "INTELLIGENT_TIERING", "TransitionInDays": 30}
    ]
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 7
    }


def test_job_log_group_has_the_settings_name(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": JOB_LOG_GROUP, "RetentionInDays": 90}
    )
