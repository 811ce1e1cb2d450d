"""The REST API's paths, defined once: the prefix and the URLs the API hands out.

Pure strings, no powertools: the SDK imports it too.
"""

from __future__ import annotations

from urllib.parse import urlencode

API_PREFIX = "/api/v1/fine-tuning"


def upload_path(upload_id: str) -> str:
    """Where an upload's bytes are PUT (the route the local runtime serves)."""
    return f"{API_PREFIX}/uploads/{upload_id}"


def download_file_path(job_id: str, artifact: str, step: int | None = None) -> str:
    """Where this server hands out a job's archive itself (stores with no presigned URLs)."""
    query = urlencode({"artifact": artifact, **({"step": step} if step is not None else {})})
    return f"{API_PREFIX}/jobs/{job_id}/download/file?{query}"
