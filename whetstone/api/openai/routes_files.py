"""/v1/files: OpenAI's file routes over Whetstone's uploads."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import File, Form, Path, Query, UploadFile

from whetstone.api.identity import current_caller
from whetstone.api.openai import files
from whetstone.api.openai.paging import page
from whetstone.api.openai.schemas import OpenAIDeleted, OpenAIFile, OpenAIFileList
from whetstone.runtime import get_platform

router = Router()

FileId = Annotated[str, Path(description="File id (file-...).", max_length=64)]


@router.post("/files", summary="Upload a fine-tuning file (OpenAI)")
def create_file(
    file: Annotated[UploadFile, File(description="The JSONL training data.")],
    purpose: Annotated[str, Form(description="Must be 'fine-tune'.")],
) -> OpenAIFile:
    return files.create_file(
        get_platform(), current_caller(router), file.content, file.filename, purpose
    )


@router.get("/files", summary="List files, newest first (OpenAI)")
def list_files(
    after: Annotated[str | None, Query(max_length=64, description="List after this id.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Page size.")] = 10_000,
    purpose: Annotated[str | None, Query(description="Only this purpose.")] = None,
) -> OpenAIFileList:
    found = [
        f
        for f in files.list_files(get_platform(), current_caller(router))
        if purpose is None or f.purpose == purpose
    ]
    chosen, has_more = page(found, after, limit)
    return OpenAIFileList(
        data=chosen,
        has_more=has_more,
    )


@router.get("/files/<file_id>", summary="Get a file (OpenAI)")
def get_file(file_id: FileId) -> OpenAIFile:
    return files.get_file(get_platform(), current_caller(router), file_id)


@router.delete("/files/<file_id>", summary="Delete a file (OpenAI)")
def delete_file(file_id: FileId) -> OpenAIDeleted:
    files.delete_file(get_platform(), current_caller(router), file_id)
    return OpenAIDeleted(id=file_id, object="file")


# No return annotation: the resolver would validate the file's bytes as JSON.
@router.get("/files/<file_id>/content", summary="A file's bytes (OpenAI)")
def file_content(file_id: FileId):  # type: ignore[no-untyped-def]
    with files.open_content(get_platform(), current_caller(router), file_id) as stream:
        payload = stream.read()
    return Response(
        status_code=HTTPStatus.OK, content_type="application/octet-stream", body=payload
    )
