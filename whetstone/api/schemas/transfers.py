"""Files in and out: download links of a job's archives, and dataset uploads."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from whetstone.api.schemas.base import WireModel

# The wire names of service.artifacts.ArtifactKind (a unit test keeps them equal).
ArtifactName = Literal["model", "adapter", "merged", "checkpoint"]


class DownloadLinkResponse(WireModel):
    """Where to fetch one archive of a completed job."""

    url: Annotated[
        str | None,
        Field(description="A presigned URL (aws), or the API path that serves the file (local)."),
    ]
    expires_in_s: Annotated[int, Field(description="Seconds the URL stays valid.")]
    size_bytes: Annotated[int, Field(description="Bytes in the archive.")]
    artifact: Annotated[
        ArtifactName,
        Field(description="What the archive holds: model, adapter, merged, checkpoint."),
    ]
    step: Annotated[int | None, Field(description="The checkpoint's step; checkpoint only.")]
    filename: Annotated[str, Field(description="A file name for the archive.")]


class UploadResponse(WireModel):
    """A place to PUT a large dataset, named later by its upload id."""

    upload_id: Annotated[str, Field(description="Set it as spec.dataset.source in jobs/json.")]
    url: Annotated[str | None, Field(description="A presigned PUT URL (aws); null: PUT to path.")]
    path: Annotated[str, Field(description="The API path that takes the PUT in every runtime.")]
    expires_in_s: Annotated[int, Field(description="Seconds the URL stays valid.")]


class UploadReceipt(WireModel):
    """What the server stored of an upload's bytes."""

    upload_id: Annotated[str, Field(description="The upload.")]
    size_bytes: Annotated[int, Field(description="Bytes stored.")]
