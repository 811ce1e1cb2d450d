"""OpenAI fine-tuning jobs over Whetstone's: a create request becomes a job spec, and a job
record becomes a `fine_tuning.job`. docs/openai-api.md holds the mapping as one table."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from whetstone.api.openai.files import file_id_of, get_file, upload_id_of
from whetstone.api.openai.schemas import (
    OpenAICreateJobRequest,
    OpenAIFineTuningJob,
    OpenAIHyperparameters,
    OpenAIJobError,
    OpenAIMethod,
    OpenAIMethodHyperparameters,
)
from whetstone.core.errors import InvalidInputError, NotFoundError
from whetstone.core.job import Caller, JobRecord, utcnow
from whetstone.core.layout import UploadLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.core.spec import DatasetFormat, TrainingParams
from whetstone.core.spec import Method as SpecMethod
from whetstone.service.jobs import NewJob
from whetstone.service.platform import Platform

FINE_TUNED_PREFIX = "ft:"
# Supervised fine-tuning trains a LoRA adapter: the method Whetstone defaults to.
SUPERVISED_METHOD = SpecMethod.LORA
DEFAULT_LEARNING_RATE: float = TrainingParams.model_fields["learning_rate"].default

STATUS: dict[JobStatus, str] = {
    JobStatus.PENDING: "validating_files",
    JobStatus.PREPARING: "validating_files",
    JobStatus.BUILDING: "queued",
    JobStatus.DEPLOYING: "queued",
    JobStatus.TRAINING: "running",
    JobStatus.EVALUATING: "running",
    JobStatus.COMPLETED: "succeeded",
    JobStatus.FAILED: "failed",
    # A stop cannot be taken back: the job is cancelled from the moment it is asked.
    JobStatus.STOPPING: "cancelled",
    JobStatus.CANCELLED: "cancelled",
    JobStatus.PAUSING: "paused",
    JobStatus.PAUSED: "paused",
}


def _refuse(param: str, message: str, code: str) -> InvalidInputError:
    return InvalidInputError(message, code=code, details=[{"loc": param, "message": message}])


def _hyperparameters(request: OpenAICreateJobRequest) -> tuple[str, OpenAIHyperparameters]:
    method = request.method or OpenAIMethod(type="supervised")
    if method.type == "reinforcement":
        raise _refuse("method.type", "reinforcement fine-tuning is not served", "unsupported")
    chosen = method.dpo if method.type == "dpo" else method.supervised
    hyper = chosen.hyperparameters if chosen else request.hyperparameters
    return method.type, hyper or OpenAIHyperparameters()


def _given(value: Any) -> bool:
    return value is not None and value != "auto"


def new_job(platform: Platform, caller: Caller, request: OpenAICreateJobRequest) -> NewJob:
    """The Whetstone job a `fine_tuning.jobs.create` asks for."""
    if request.validation_file:
        raise _refuse(
            "validation_file",
            "a separate validation file is not served: Whetstone splits the training file "
            "(dataset.split, 80/15/5 by default); add the validation examples to "
            "training_file",
            "validation_file_unsupported",
        )
    if request.integrations:
        raise _refuse("integrations", "integrations (wandb) are not served", "unsupported")
    try:
        get_file(platform, caller, request.training_file)
    except NotFoundError as error:
        raise _refuse(
            "training_file", f"training_file: {error.message}", "invalid_training_file"
        ) from error
    kind, hyper = _hyperparameters(request)
    training: dict[str, Any] = {}
    if _given(hyper.n_epochs):
        training["epochs"] = hyper.n_epochs
    if _given(hyper.batch_size):
        training["batch_size"] = hyper.batch_size
    multiplier = hyper.learning_rate_multiplier
    if isinstance(multiplier, int | float):
        training["learning_rate"] = DEFAULT_LEARNING_RATE * multiplier
    spec: dict[str, Any] = {
        "base_model": platform.settings.openai_model_aliases.get(request.model, request.model),
        "method": SpecMethod.DPO if kind == "dpo" else SUPERVISED_METHOD,
        "dataset": {"source": upload_id_of(request.training_file)},
        "training": training,
    }
    if kind == "dpo":
        spec["dataset"]["format"] = DatasetFormat.PREFERENCE
        if _given(hyper.beta):
            spec["dpo"] = {"beta": hyper.beta}
    if request.seed is not None:
        spec["advanced"] = {"seed": request.seed}
    return NewJob.model_validate(
        {"spec": _laid_over(spec, request.whetstone or {}), "name": request.suffix}
    )


def _laid_over(base: dict[str, Any], extension: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extension`'s fields in place of its own, section by section."""
    merged = dict(base)
    for key, value in extension.items():
        inner = merged.get(key)
        if isinstance(inner, dict) and isinstance(value, dict):
            merged[key] = _laid_over(inner, value)
        else:
            merged[key] = value
    return merged


def _unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


def fine_tuned_model(job: JobRecord) -> str:
    """The model's name: ft:<base>:<org>:<suffix>:<job id>."""
    return ":".join(("ft", job.spec.base_model, job.org_id, job.name or "", job.job_id))


def job_id_of_model(name: str) -> str:
    """The job a fine-tuned model's name ends with; NotFoundError for another name."""
    if not name.startswith(FINE_TUNED_PREFIX) or name.count(":") < 4:
        raise NotFoundError(f"no fine-tuned model {name!r}", code="model_not_found")
    return name.rsplit(":", 1)[1]


def training_file(job: JobRecord) -> str:
    """The file id the job trained on; its dataset source when it was no file."""
    key = job.dataset.blob_key
    upload = UploadLayout.of_key(job.org_id, key) if key else None
    return file_id_of(upload.upload_id) if upload else job.dataset.source


def _trained_tokens(job: JobRecord) -> int | None:
    if job.status is not JobStatus.COMPLETED:
        return None
    data = job.dataset
    tokens = data.tokens or (
        round(data.num_examples * data.mean_tokens) if data.num_examples and data.mean_tokens else 0
    )
    return tokens * job.spec.training.epochs


def _estimated_finish(job: JobRecord) -> int | None:
    eta = job.progress.eta_seconds
    if job.is_terminal or eta is None:
        return None
    return _unix(utcnow() + timedelta(seconds=eta))


def to_openai(job: JobRecord) -> OpenAIFineTuningJob:
    """The job as OpenAI's `fine_tuning.job`."""
    spec = job.spec
    hyper = OpenAIHyperparameters(
        n_epochs=spec.training.epochs,
        batch_size=spec.training.batch_size,
        learning_rate_multiplier=spec.training.learning_rate / DEFAULT_LEARNING_RATE,
    )
    if spec.method is SpecMethod.DPO:
        dpo = hyper.model_copy(update={"beta": spec.dpo.beta})
        method = OpenAIMethod(type="dpo", dpo=OpenAIMethodHyperparameters(hyperparameters=dpo))
    else:
        method = OpenAIMethod(
            type="supervised", supervised=OpenAIMethodHyperparameters(hyperparameters=hyper)
        )
    error = job.error
    return OpenAIFineTuningJob(
        id=job.job_id,
        created_at=int(job.created_at.timestamp()),
        finished_at=_unix(job.finished_at) if job.is_terminal else None,
        error=OpenAIJobError(code=error.code, message=error.message) if error else None,
        fine_tuned_model=fine_tuned_model(job) if job.status is JobStatus.COMPLETED else None,
        hyperparameters=hyper,
        method=method,
        model=spec.base_model,
        organization_id=job.org_id,
        seed=spec.advanced.seed,
        status=STATUS[job.status],
        suffix=job.name,
        trained_tokens=_trained_tokens(job),
        training_file=training_file(job),
        estimated_finish=_estimated_finish(job),
    )
