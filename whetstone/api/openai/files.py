"""OpenAI files over Whetstone's uploads: a file `file-<x>` is the upload `upload-<x>`, so a
job names it as its dataset source and the usual validation reads it.

What OpenAI reports about a file (its name, purpose, time, and whether it passed Whetstone's
checks) lies beside the upload's bytes as `file.json`; an upload made through Whetstone's own
API has none and is no file here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import BinaryIO, Literal

from whetstone.api.openai.schemas import OpenAIFile
from whetstone.core.errors import InvalidInputError, NotFoundError
from whetstone.core.job import JOB_ID_PREFIX, Caller, new_job_id, utcnow
from whetstone.core.layout import UPLOADS_ROOT, UploadLayout
from whetstone.service.datasets import DatasetCheck, require_valid_dataset
from whetstone.service.platform import Platform
from whetstone.service.uploads import UPLOAD_ID_PREFIX, is_upload_id

FILE_ID_PREFIX = "file-"
PURPOSE = "fine-tune"
_META = "file.json"


def upload_id_of(file_id: str) -> str:
    """The upload holding a file's bytes; NotFoundError for a name that is no file id."""
    upload_id = UPLOAD_ID_PREFIX + file_id.removeprefix(FILE_ID_PREFIX)
    if not file_id.startswith(FILE_ID_PREFIX) or not is_upload_id(upload_id):
        raise NotFoundError(f"no file {file_id!r}", code="file_not_found")
    return upload_id


def file_id_of(upload_id: str) -> str:
    return FILE_ID_PREFIX + upload_id.removeprefix(UPLOAD_ID_PREFIX)


def _meta_key(layout: UploadLayout) -> str:
    return layout.prefix + _META


def _checked(
    platform: Platform, data: bytes
) -> tuple[Literal["uploaded", "processed", "error"], str | None]:
    """The file's status after Whetstone's checks with the default dataset settings, and
    the report's message when it fails them; a file too large to check at once stays
    `uploaded` (the job's prepare stage checks it)."""
    if len(data) > platform.settings.sync_validation_max_bytes:
        return "uploaded", None
    try:
        # Without its name, as a job reads its upload: the same report, the same message.
        require_valid_dataset(io.BytesIO(data), DatasetCheck(), None, platform.settings)
    except InvalidInputError as error:
        return "error", error.message
    return "processed", None


def create_file(
    platform: Platform, caller: Caller, data: bytes, filename: str | None, purpose: str
) -> OpenAIFile:
    """Store an uploaded file, checked as a dataset; only `fine-tune` files are taken. A file
    that fails the checks is stored too, with status `error` and the report's message."""
    if purpose != PURPOSE:
        raise InvalidInputError(
            f"purpose {purpose!r} is not served; Whetstone takes files with purpose "
            f"{PURPOSE!r} only",
            code="unsupported_purpose",
            details=[{"loc": "purpose", "message": "must be fine-tune"}],
        )
    upload_id = UPLOAD_ID_PREFIX + new_job_id().removeprefix(JOB_ID_PREFIX)
    layout = UploadLayout(caller.org_id, upload_id)
    status, details = _checked(platform, data)
    stored = OpenAIFile(
        id=file_id_of(upload_id),
        bytes=len(data),
        created_at=int(utcnow().timestamp()),
        filename=filename or "file.jsonl",
        purpose=purpose,
        status=status,
        status_details=details,
    )
    platform.blobs.put(layout.data, data)
    platform.blobs.put(_meta_key(layout), stored.model_dump_json().encode())
    return stored


def get_file(platform: Platform, caller: Caller, file_id: str) -> OpenAIFile:
    layout = UploadLayout(caller.org_id, upload_id_of(file_id))
    if not platform.blobs.exists(_meta_key(layout)):
        raise NotFoundError(f"no file {file_id!r}", code="file_not_found")
    with platform.blobs.open(_meta_key(layout)) as stream:
        return OpenAIFile.model_validate(json.load(stream))


def list_files(platform: Platform, caller: Caller) -> Iterator[OpenAIFile]:
    """The organization's files, newest first (ids sort by creation time)."""
    root = f"{UPLOADS_ROOT}{caller.org_id}/"
    keys = [key for key in platform.blobs.list(root) if key.endswith("/" + _META)]
    for key in sorted(keys, reverse=True):
        upload = UploadLayout.of_key(caller.org_id, key)
        if upload is not None:
            yield get_file(platform, caller, file_id_of(upload.upload_id))


def open_content(platform: Platform, caller: Caller, file_id: str) -> BinaryIO:
    get_file(platform, caller, file_id)
    return platform.blobs.open(UploadLayout(caller.org_id, upload_id_of(file_id)).data)


def delete_file(platform: Platform, caller: Caller, file_id: str) -> None:
    """Delete the file; jobs that trained on it keep their own prepared copy of the data."""
    get_file(platform, caller, file_id)
    platform.blobs.delete_prefix(UploadLayout(caller.org_id, upload_id_of(file_id)).prefix)
