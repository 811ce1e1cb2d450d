"""Dataset uploads: a key to PUT a large dataset to, named later as a job's dataset source."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from whetstone.core.deferred import DeferredModel
from whetstone.core.errors import NotFoundError
from whetstone.core.job import JOB_ID_PREFIX, Caller, new_job_id
from whetstone.core.layout import UploadLayout
from whetstone.service.platform import Platform

UPLOAD_EXPIRY_S = 3600
UPLOAD_ID_PREFIX = "upload-"
_UPLOAD_ID = re.compile(UPLOAD_ID_PREFIX + r"[0-9a-z]{20}")


class UploadSlot(DeferredModel):
    """A new upload: its id and where to PUT the bytes."""

    upload_id: Annotated[str, Field(description="Name it as dataset.source in jobs/json.")]
    url: Annotated[
        str | None,
        Field(description="Presigned PUT URL (aws); null: PUT to the API's path."),
    ]
    expires_in_s: Annotated[int, Field(description="Seconds the URL stays valid.")]


def create_upload(platform: Platform, caller: Caller) -> UploadSlot:
    """A new upload id and, where the store can, a presigned URL to PUT the bytes to."""
    upload_id = UPLOAD_ID_PREFIX + new_job_id().removeprefix(JOB_ID_PREFIX)
    return UploadSlot(
        upload_id=upload_id,
        url=platform.blobs.presign_put(
            UploadLayout(caller.org_id, upload_id).data, UPLOAD_EXPIRY_S
        ),
        expires_in_s=UPLOAD_EXPIRY_S,
    )


def is_upload_id(name: str) -> bool:
    """Whether `name` has the shape of an id create_upload hands out."""
    return _UPLOAD_ID.fullmatch(name) is not None


def require_upload_id(upload_id: str) -> None:
    if not is_upload_id(upload_id):
        raise NotFoundError(f"no upload {upload_id!r}", code="upload_not_found")


def put_upload(platform: Platform, caller: Caller, upload_id: str, data: bytes) -> int:
    require_upload_id(upload_id)
    platform.blobs.put(UploadLayout(caller.org_id, upload_id).data, data)
    return len(data)
