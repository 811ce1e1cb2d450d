"""S3 ObjectCreated under incoming/ → a job, as `POST /jobs/json` would create it."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from whetstone import runtime
from whetstone.observability import S3_EVENT, lambda_entry
from whetstone.service.s3_trigger import ingest_drop


@lambda_entry(S3_EVENT)
def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    platform = runtime.get_platform()
    created = []
    for record in event.get("Records", []):
        s3 = record["s3"]
        key = unquote_plus(s3["object"]["key"])  # S3 event keys are URL-encoded
        job = ingest_drop(platform, key)
        if job is not None:
            created.append(job.job_id)
    return {"created": created}
