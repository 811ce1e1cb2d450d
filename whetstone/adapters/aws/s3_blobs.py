"""BlobStore on S3: one bucket, an optional key prefix, server-side encryption on writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from whetstone.core.errors import NotFoundError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef


def put_object_args(bucket: str, key: str, kms_key_id: str | None = None) -> dict[str, Any]:
    """The encryption arguments of every write: SSE-KMS with the given key, else SSE-S3."""
    args: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if kms_key_id:
        args["ServerSideEncryption"] = "aws:kms"
        args["SSEKMSKeyId"] = kms_key_id
    else:
        args["ServerSideEncryption"] = "AES256"
    return args


class S3BlobStore:
    """Objects live at s3://bucket/<prefix><key>."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        kms_key_id: str | None = None,
        client: S3Client | None = None,
    ) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            # Presigned URLs need SigV4: S3 refuses SigV2 on buckets made since June 2020.
            client = boto3.client("s3", config=Config(signature_version="s3v4"))
        self._s3 = client
        self.bucket = bucket
        self.prefix = prefix
        self.kms_key_id = kms_key_id

    def _key(self, key: str) -> str:
        return self.prefix + key

    def put(self, key: str, data: bytes | BinaryIO) -> None:
        args = put_object_args(self.bucket, self._key(key), self.kms_key_id)
        if isinstance(data, bytes):
            self._s3.put_object(Body=data, **args)
        else:
            extra = {k: v for k, v in args.items() if k not in ("Bucket", "Key")}
            self._s3.upload_fileobj(data, self.bucket, self._key(key), ExtraArgs=extra)

    def open(self, key: str) -> BinaryIO:
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=self._key(key))
        except self._s3.exceptions.NoSuchKey:
            raise NotFoundError(f"no object at s3://{self.bucket}/{self._key(key)}") from None
        return cast(BinaryIO, response["Body"])

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except self._s3.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def _head(self, key: str) -> Any:
        try:
            return self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except self._s3.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise NotFoundError(f"no object at s3://{self.bucket}/{self._key(key)}") from None
            raise

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def revision(self, key: str) -> str:
        return str(self._head(key)["ETag"]).strip('"')

    def list(self, prefix: str) -> Sequence[str]:
        keys: list[str] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            keys.extend(item["Key"][len(self.prefix) :] for item in page.get("Contents", []))
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every version and delete marker under `prefix` (the artifacts bucket is
        versioned: deleting only the current objects would leave their data behind); the
        number of keys that had a current object."""
        versions: list[ObjectIdentifierTypeDef] = []
        current = 0
        paginator = self._s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                versions.append({"Key": item["Key"], "VersionId": item["VersionId"]})
            current += sum(1 for item in page.get("Versions", []) if item["IsLatest"])
        for start in range(0, len(versions), 1000):
            self._s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": versions[start : start + 1000], "Quiet": True},
            )
        return current

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def presign_get(self, key: str, expires_s: int) -> str | None:
        return self._s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=expires_s,
        )

    def presign_put(self, key: str, expires_s: int) -> str | None:
        params = put_object_args(self.bucket, self._key(key), self.kms_key_id)
        return self._s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_s)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """('bucket', 'key') of s3://bucket/key; ValueError when it is not one."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    if not bucket or not key:
        raise ValueError(f"{uri!r} needs a bucket and a key: s3://bucket/key")
    return bucket, key
