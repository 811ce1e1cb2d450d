"""The workflow's steps around the prepare stage: the trainer plan written before it, and
what it found recorded after it, with the job re-estimated from the real counts.

`prepare`, which does the prepare stage's data work in the calling process, remains for
the aws state machine until it runs the stage.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from whetstone.core.catalog.base_models import BASE_MODELS_BY_ID
from whetstone.core.datasets.prepared import PreparedData
from whetstone.core.errors import InvalidInputError, NotFoundError
from whetstone.core.estimates import check_fit, run_time_cap_hours
from whetstone.core.job import JobRecord
from whetstone.core.layout import JobLayout
from whetstone.core.plan import EventSinkSettings, PlanDataset, TrainerOptions, TrainerPlan
from whetstone.core.spec import LORA_METHODS
from whetstone.service.datasets import check_source, local_source_path, prepare_splits
from whetstone.service.event_credentials import issue_event_credential
from whetstone.service.job_log import log
from whetstone.service.jobs import does_not_fit_message, estimate_job
from whetstone.service.models import resolve_base_model
from whetstone.service.platform import Platform
from whetstone.service.records import update_job
from whetstone.service.workflow_errors import (
    DatasetInvalid,
    ModelDoesNotFit,
    ModelFactsUnknown,
    require_job,
)


class Prepared(BaseModel):
    plan_uri: Annotated[str, Field(description="Where the trainer plan lies.")]


def trainer_model_source(base_model: str) -> str:
    """What the trainer loads: a catalog id becomes its Hugging Face repo."""
    model = BASE_MODELS_BY_ID.get(base_model)
    return f"hf://{model.hf_repo}" if model else base_model


def _plan_dataset(platform: Platform, job: JobRecord) -> PlanDataset:
    """The dataset as the prepare stage reads it: checked against the job's organization
    again (the plan only ever names a source it may read), a local path resolved, not read."""
    source = job.dataset.source
    if job.dataset.blob_key is not None:
        source = platform.blobs.uri(job.dataset.blob_key)
    else:
        try:
            check_source(source, platform.settings, org_id=job.org_id)
            if not source.startswith(("s3://", "hf://")):
                source = str(local_source_path(source, platform.settings))
        except InvalidInputError as error:
            raise DatasetInvalid(error.message, details=error.details) from error
    return PlanDataset(
        source=source,
        filename=job.dataset.filename,
        max_file_bytes=platform.settings.max_upload_bytes,
        max_row_bytes=platform.settings.max_row_bytes,
    )


def write_plan(platform: Platform, job_id: str, events: EventSinkSettings) -> Prepared:
    """Write the trainer plan, which names the dataset's source; reads no data."""
    job = require_job(platform, job_id)
    spec = job.spec
    layout = JobLayout.of(job)
    events = issue_event_credential(platform, job_id, events)
    plan = TrainerPlan(
        job_id=job_id,
        spec=spec,
        data=platform.blobs.uri(layout.data),
        model_source=trainer_model_source(spec.base_model),
        output=platform.blobs.uri(layout.output),
        job_files=platform.blobs.uri(layout.prefix),
        dataset=_plan_dataset(platform, job),
        events=events,
        options=TrainerOptions(
            merge_adapter=spec.tuning_method in LORA_METHODS and spec.lora.save_merged,
            max_run_hours=run_time_cap_hours(spec.hardware.max_run_hours, job.estimate),
        ),
    )
    platform.blobs.put(layout.plan, plan.model_dump_json(indent=2).encode())
    log(platform, job_id, "build", "trainer plan written", model=plan.model_source)
    return Prepared(plan_uri=platform.blobs.uri(layout.plan))


def _read_prepared(platform: Platform, layout: JobLayout) -> PreparedData:
    try:
        with platform.blobs.open(layout.prepared) as stream:
            return PreparedData.model_validate_json(stream.read())
    except NotFoundError as error:
        raise DatasetInvalid("the prepare stage left no prepared.json; see the log") from error


def record_prepared(platform: Platform, job_id: str) -> JobRecord:
    """Record what the prepare stage found and re-estimate the job from the real counts;
    DatasetInvalid (with the report) when the dataset cannot be trained on."""
    job = require_job(platform, job_id)
    prepared = _read_prepared(platform, JobLayout.of(job))
    if not prepared.valid:
        report = prepared.report
        raise DatasetInvalid(
            f"the dataset is not valid: {prepared.message}",
            details=report.model_dump(mode="json") if report else None,
        )
    spec = job.spec
    local = platform.settings.runtime == "local"
    try:  # a hub or S3 model outside the catalog: by the config the prepare stage read
        model = resolve_base_model(
            spec.base_model, allow_local_paths=local, config=prepared.base_model_config
        )
    except InvalidInputError as error:
        raise ModelFactsUnknown(
            f"the model's facts are unknown: {error.message}; the prepare stage could not "
            "read its config.json either (for a gated hub model, give the trainer a token)"
        ) from error
    required_gib = job.required_gib
    if required_gib is None:  # the API could not read the model: the fit is checked here
        fit = check_fit(model, spec)
        if not fit.fits:
            raise ModelDoesNotFit(does_not_fit_message(fit), details=fit.model_dump(mode="json"))
        required_gib = fit.required_gib
    estimate = estimate_job(platform, model, spec, prepared.examples, prepared.mean_tokens)
    warnings = [w.code.value for w in prepared.report.warnings] if prepared.report else []

    def record(current: JobRecord) -> JobRecord:
        dataset = current.dataset.model_copy(
            update={
                "format": prepared.format,
                "num_examples": prepared.examples,
                "mean_tokens": prepared.mean_tokens,
                "splits": {name: split.examples for name, split in prepared.splits.items()},
                "tokens": prepared.tokens,
                "tokens_estimated": prepared.tokens_estimated,
                "warnings": warnings,
            }
        )
        cost = current.cost.model_copy(
            update={
                "hourly_rate_usd": estimate.hourly_rate_usd,
                "estimated_total_usd": estimate.estimated_cost_usd,
            }
        )
        return current.model_copy(
            update={
                "dataset": dataset,
                "estimate": estimate,
                "cost": cost,
                "required_gib": required_gib,
            }
        )

    recorded = update_job(platform, job_id, record)
    _cap_run_time(platform, recorded)
    log(
        platform,
        job_id,
        "build",
        "dataset prepared",
        splits=recorded.dataset.splits,
        tokens=prepared.tokens,
        tokens_estimated=prepared.tokens_estimated,
        estimated_hours=estimate.estimated_hours,
    )
    return recorded


def _cap_run_time(platform: Platform, job: JobRecord) -> None:
    """The plan's run-time cap follows the estimate recomputed from the real counts."""
    key = JobLayout.of(job).plan
    with platform.blobs.open(key) as stream:
        plan = TrainerPlan.model_validate_json(stream.read())
    cap = run_time_cap_hours(job.spec.hardware.max_run_hours, job.estimate)
    options = plan.options.model_copy(update={"max_run_hours": cap})
    plan = plan.model_copy(update={"options": options})
    platform.blobs.put(key, plan.model_dump_json(indent=2).encode())


def prepare(platform: Platform, job_id: str, events: EventSinkSettings) -> Prepared:
    """Validate and split the dataset in this process, then write the trainer plan (the aws
    state machine's step until it runs the prepare stage)."""
    job = require_job(platform, job_id)
    spec = job.spec
    layout = JobLayout.of(job)
    log(platform, job_id, "build", "preparing dataset", dataset=job.dataset.source)
    source: str | bytes = job.dataset.source
    if job.dataset.blob_key is not None:
        with platform.blobs.open(job.dataset.blob_key) as stream:
            source = stream.read()
    try:
        prepared = prepare_splits(
            source,
            spec.dataset,
            cutoff_length=spec.sequence_length,
            seed=spec.advanced.seed,
            blobs=platform.blobs,
            prefix=layout.data,
            settings=platform.settings,
            org_id=job.org_id,
            filename=job.dataset.filename,
            method=spec.method,
        )
    except InvalidInputError as error:
        raise DatasetInvalid(error.message, details=error.details) from error
    manifest = prepared.manifest
    log(platform, job_id, "build", "dataset split", counts=manifest.counts, sha256=manifest.sha256)

    def record_dataset(current: JobRecord) -> JobRecord:
        dataset = current.dataset.model_copy(
            update={
                "format": manifest.format,
                "num_examples": sum(manifest.counts.values()),
                "mean_tokens": manifest.mean_tokens,
                "splits": manifest.counts,
            }
        )
        return current.model_copy(update={"dataset": dataset})

    update_job(platform, job_id, record_dataset)
    return write_plan(platform, job_id, events)
