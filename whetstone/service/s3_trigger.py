"""Jobs from files dropped in the bucket: `incoming/<organization>/<name>.<ext>` + its config.

Convention (docs/workflow.md, "S3 drop"): the dataset `incoming/<org>/<name>.<ext>` and,
beside it, `incoming/<org>/<name>.job.json`, the body `POST /jobs/json` takes (`spec`,
optional `name`). Either may arrive first: each upload event looks for its partner and
the second one creates the job, exactly as the API would (same checks, same quotas),
with an idempotency key derived from the dataset's key and ETag, so the two events of a
pair, or a redelivered event, create one job. A drop that cannot become a job leaves
`<name>.error.json` beside it (code, message, details); an accepted one leaves
`<name>.accepted.json` with the job id. The dataset is not read here (a small one is
validated by `create_job`, a larger one by the prepare stage): the job reads it from its
key in incoming/, which must stay until the job has been prepared.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError

from whetstone.core.errors import WhetstoneError
from whetstone.core.job import Caller, JobRecord
from whetstone.core.layout import INCOMING_ROOT
from whetstone.observability import logger
from whetstone.service.jobs import NewJob, create_job
from whetstone.service.platform import Platform

CONFIG_SUFFIX = ".job.json"
ERROR_SUFFIX = ".error.json"
ACCEPTED_SUFFIX = ".accepted.json"
DROP_USER = "s3-drop"


class Drop(BaseModel):
    """A dataset and its job config, as found in the bucket."""

    org_id: Annotated[str, Field(min_length=1, description="From incoming/<org>/.")]
    stem: Annotated[str, Field(description="incoming/<org>/<name> without extension.")]
    dataset_key: Annotated[str, Field(description="Key of the dataset.")]
    config_key: Annotated[str, Field(description="Key of the job config.")]


def _stem_of(key: str) -> str | None:
    name = key.rsplit("/", 1)[-1]
    if name.endswith(CONFIG_SUFFIX):
        return key.removesuffix(CONFIG_SUFFIX)
    if "." not in name:
        return key
    return key.rsplit(".", 1)[0]


def find_drop(platform: Platform, key: str) -> Drop | None:
    """The complete drop `key` belongs to, or None (not a drop, or its partner is missing)."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != INCOMING_ROOT or not parts[1] or not parts[2]:
        return None
    if key.endswith((ERROR_SUFFIX, ACCEPTED_SUFFIX)):
        return None
    stem = _stem_of(key)
    if stem is None:
        return None
    config_key = stem + CONFIG_SUFFIX
    datasets = [
        k
        for k in platform.blobs.list(stem)
        if _stem_of(k) == stem and not k.endswith((CONFIG_SUFFIX, ERROR_SUFFIX, ACCEPTED_SUFFIX))
    ]
    if len(datasets) != 1 or not platform.blobs.exists(config_key):
        return None
    return Drop(org_id=parts[1], stem=stem, dataset_key=datasets[0], config_key=config_key)


def _report(platform: Platform, key: str, body: dict[str, Any]) -> None:
    platform.blobs.put(key, json.dumps(body, indent=2, default=str).encode())


def ingest_drop(platform: Platform, key: str) -> JobRecord | None:
    """Create the job of the drop `key` completes; None when it is not (yet) a drop or is
    bad (then `<name>.error.json` says why)."""
    drop = find_drop(platform, key)
    if drop is None:
        return None
    caller = Caller(user_id=DROP_USER, org_id=drop.org_id)
    # The dataset's own ETag, whichever of the pair's events this is: the two events of a
    # drop uploaded together must make one job.
    revision = platform.blobs.revision(drop.dataset_key)
    key_hash = hashlib.sha256(f"{drop.dataset_key}#{revision}".encode()).hexdigest()[:32]
    try:
        with platform.blobs.open(drop.config_key) as stream:
            new = NewJob.model_validate_json(stream.read())
        if platform.blobs.size(drop.dataset_key) > platform.settings.max_upload_bytes:
            raise WhetstoneError(
                f"{drop.dataset_key} is larger than {platform.settings.max_upload_bytes} bytes",
                code="dataset_too_large",
            )
        job = create_job(
            platform,
            caller,
            new,
            dataset_key=drop.dataset_key,
            filename=drop.dataset_key.rsplit("/", 1)[-1],
            idempotency_key=f"s3-drop-{key_hash}",
        )
    except ValidationError as error:
        _report(
            platform,
            drop.stem + ERROR_SUFFIX,
            {
                "code": "invalid_config",
                "message": f"{drop.config_key} is not a valid job: fix it and upload it again",
                "details": json.loads(error.json()),
            },
        )
        return None
    except WhetstoneError as error:
        details = (
            error.details.model_dump(mode="json")
            if isinstance(error.details, BaseModel)
            else error.details
        )
        _report(
            platform,
            drop.stem + ERROR_SUFFIX,
            {"code": error.code, "message": error.message, "details": details},
        )
        logger.info("bad drop", key=key, code=error.code)
        return None
    _report(platform, drop.stem + ACCEPTED_SUFFIX, {"job_id": job.job_id})
    logger.info("job created from a drop", key=key, job_id=job.job_id, org_id=job.org_id)
    return job
