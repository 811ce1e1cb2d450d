"""What a vLLM pod may do in AWS: the serving role (read-only on jobs' models, infra
ServingRole), narrowed per deploy by a session policy to the one job's model."""

from __future__ import annotations

import json


def partition(region: str) -> str:
    """The AWS partition of `region`."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def model_read_policy(model_uri: str, region: str) -> str:
    """A session policy (JSON) allowing only reads of the objects under `model_uri`
    (s3://bucket/jobs/<org>/<job>/output/model/): the most the deploy's pods can do."""
    bucket, _, prefix = model_uri.removeprefix("s3://").partition("/")
    if not bucket or not prefix:
        raise ValueError(f"not an S3 key prefix: {model_uri!r}")
    arn = f"arn:{partition(region)}:s3:::{bucket}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{arn}/{prefix}*"},
                {
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": arn,
                    "Condition": {"StringLike": {"s3:prefix": f"{prefix}*"}},
                },
            ],
        },
        separators=(",", ":"),
    )
