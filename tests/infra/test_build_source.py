"""Only the deploy role writes the trainer image's build source (issue 15 item 6)."""

from __future__ import annotations

from typing import Any

from support.cfn_text import rendered

from infra.constants import BUILD_SOURCE_KEY, BUILD_SOURCE_PREFIX, BUILD_SOURCE_ROLE_PREFIX

ROLE_ARN = (
    "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/"
    f"{BUILD_SOURCE_ROLE_PREFIX}-${{AWS::Region}}"
)
BUCKET = "whetstone-artifacts-${AWS::AccountId}-${AWS::Region}"


def test_the_artifacts_bucket_denies_build_source_writes_to_all_but_the_deploy_role(
    synthesized: Any,
) -> None:
    # Given the artifacts bucket's policy
    (policy,) = synthesized.resources("WhetstoneData", "AWS::S3::BucketPolicy").values()
    statements = rendered(policy["Properties"]["PolicyDocument"]["Statement"])

    # When its statements on the build prefix are read
    on_build = [s for s in statements if str(s["Resource"]).endswith(f"/{BUILD_SOURCE_PREFIX}*")]

    # Then one denies every principal but the deploy role each write of an object there
    assert on_build == [
        {
            "Sid": "OnlyTheDeployRoleWritesTheBuildSource",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
            "Resource": on_build[0]["Resource"],
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": ROLE_ARN}},
        }
    ]


def test_the_deploy_role_is_assumed_from_the_account_and_writes_only_the_source_key(
    synthesized: Any,
) -> None:
    # Given the build stack's roles
    roles = rendered(synthesized.resources("WhetstoneBuild", "AWS::IAM::Role"))
    (name,) = [
        n
        for n, r in roles.items()
        if str(r["Properties"].get("RoleName", "")).startswith(BUILD_SOURCE_ROLE_PREFIX)
    ]
    role = roles[name]["Properties"]

    # When its trust and its policy are read
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    policies = [
        p
        for p in rendered(synthesized.resources("WhetstoneBuild", "AWS::IAM::Policy")).values()
        if f"${{{name}}}" in p["Properties"]["Roles"]
    ]

    # Then it is named for the bucket policy's condition, trusts this account, and may put
    # the source archive and nothing else
    assert role["RoleName"] == ROLE_ARN.rsplit("/", 1)[1]
    assert trust["Principal"] == {"AWS": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    assert [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]] == [
        {
            "Action": "s3:PutObject",
            "Effect": "Allow",
            "Resource": f"arn:${{AWS::Partition}}:s3:::{BUCKET}/{BUILD_SOURCE_KEY}",
        }
    ]
