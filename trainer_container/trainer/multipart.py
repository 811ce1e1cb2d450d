"""A file-like writer that streams into an S3 multipart upload, one part buffered at a time.

The object appears only when `close` completes the upload, with metadata saying it was
written whole; a failure (or an exit through an exception) aborts the upload, so no part
is left billed and no truncated object is ever visible.
"""

from __future__ import annotations

import io
from types import TracebackType
from typing import Any

# The user metadata every object written so carries (S3 lower-cases the key).
ARCHIVE_METADATA = "whetstone-whole"
# S3 takes parts of 5 MiB and up (but the last) and 10,000 parts at most: 16 MiB parts
# hold an object of 156 GiB, and one buffer of 16 MiB is all the memory a writer holds.
PART_BYTES = 16 * 1024**2


class MultipartWriter(io.RawIOBase):
    def __init__(self, client: Any, bucket: str, key: str, part_bytes: int = PART_BYTES) -> None:
        super().__init__()
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_bytes = part_bytes
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self.size = 0

    def __enter__(self) -> MultipartWriter:
        created = self._client.create_multipart_upload(
            Bucket=self._bucket, Key=self._key, Metadata={ARCHIVE_METADATA: "1"}
        )
        self._upload_id = created["UploadId"]
        return self

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        self.size += len(view)
        while len(self._buffer) >= self._part_bytes:
            self._upload(bytes(self._buffer[: self._part_bytes]))
            del self._buffer[: self._part_bytes]
        return len(view)

    def _upload(self, body: bytes) -> None:
        number = len(self._parts) + 1
        response = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is not None:
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
            )
            return
        if self._buffer or not self._parts:  # an empty object is one empty part
            self._upload(bytes(self._buffer))
            self._buffer.clear()
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )
