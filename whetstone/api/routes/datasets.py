"""Dataset routes: validate a dataset before paying for a GPU."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import File, Form, UploadFile

from whetstone.api.identity import current_caller
from whetstone.api.schemas.datasets import DatasetValidationResponse
from whetstone.core.datasets.options import ColumnMapping
from whetstone.core.errors import InvalidInputError
from whetstone.core.spec import DatasetFormat
from whetstone.service import datasets
from whetstone.settings import get_settings

router = Router()


@router.post(
    "/datasets/validate",
    summary="Validate a dataset: an uploaded file (multipart) or a source (JSON body)",
)
def validate_dataset(
    file: Annotated[
        UploadFile | None, File(description="The dataset file (multipart/form-data).")
    ] = None,
    source: Annotated[
        str | None,
        Form(
            description="Instead of a file: s3://bucket/key (aws: under your organization's "
            "keys or a bucket granted it), hf://<owner>/<name>[:config][@split], or a local "
            "path under the dataset roots (local runtime).",
        ),
    ] = None,
    format: Annotated[
        DatasetFormat, Form(description="Dataset format; 'auto' detects it.")
    ] = DatasetFormat.AUTO,
    cutoff_length: Annotated[
        int, Form(ge=1, le=131072, description="Tokens past which an example is truncated.")
    ] = 2048,
    max_samples: Annotated[
        int | None, Form(ge=1, description="Check only the first N valid examples.")
    ] = None,
    text_column: Annotated[str | None, Form(description="Column holding the text.")] = None,
    label_column: Annotated[str | None, Form(description="Column holding the label.")] = None,
    prompt_column: Annotated[str | None, Form(description="Column holding the prompt.")] = None,
    completion_column: Annotated[
        str | None, Form(description="Column holding the completion.")
    ] = None,
) -> DatasetValidationResponse:
    check = datasets.DatasetCheck(
        format=format,
        columns=ColumnMapping(
            text=text_column, label=label_column, prompt=prompt_column, completion=completion_column
        ),
        cutoff_length=cutoff_length,
        max_samples=max_samples,
    )
    settings = get_settings()
    if file is not None and source is None:
        report = datasets.validate_bytes(file.content, file.filename, check, settings)
        return DatasetValidationResponse.from_record(report)
    if source is not None and file is None:
        caller = current_caller(router)
        report = datasets.validate_source(source, check, settings, org_id=caller.org_id)
        return DatasetValidationResponse.from_record(report)
    raise InvalidInputError(
        "send either a multipart 'file' field or a 'source' (s3://, hf:// or a local path), "
        "not both and not neither",
        code="validation_error",
    )
