"""The Python SDK: a typed client of the Whetstone REST API, on the standard library.

    client = WhetstoneClient()                      # URL and token from env or config file
    job = client.create_job("job.yaml", "train.jsonl")
    final = job.wait(on_update=lambda record: ...)
    job.download("model.tar.gz")                    # or artifact="merged" / "checkpoint", step=N
    deployment = job.deploy(); job.wait_for_deployment()

The base URL and token come from the arguments, then the environment
(`WHETSTONE_URL`, `WHETSTONE_TOKEN`), then a JSON config file
(`$WHETSTONE_CONFIG`, default `~/.config/whetstone/config.json`:
`{"url": ..., "token": ...}`), then `http://127.0.0.1:8000` without a token.
Every refusal of the server raises `WhetstoneAPIError` with its code and message;
a server that cannot be reached raises `WhetstoneConnectionError`.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

from whetstone.api.paths import API_PREFIX
from whetstone.api.schemas.api_keys import (
    ApiKeyListResponse,
    ApiKeyResponse,
    CreatedApiKeyResponse,
)
from whetstone.api.schemas.datasets import DatasetValidationResponse
from whetstone.api.schemas.deployments import DeploymentResponse
from whetstone.api.schemas.evaluation import EvaluationResponse
from whetstone.api.schemas.jobs import (
    JobListResponse,
    JobResponse,
    LogPageResponse,
    MetricSeriesResponse,
    UserStatsResponse,
)
from whetstone.api.schemas.planning import (
    BaseModelsResponse,
    EstimateCostResponse,
    HardwareOptionsResponse,
    RequirementsResponse,
    ValidateHardwareResponse,
)
from whetstone.api.schemas.transfers import ArtifactName, DownloadLinkResponse, UploadResponse
from whetstone.client_config import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_URL,
    Connection,
    JobConfig,
    config_path,
    load_job_config,
    read_file,
    resolve_connection,
)
from whetstone.client_errors import (
    WhetstoneAPIError,
    WhetstoneConfigError,
    WhetstoneConnectionError,
    WhetstoneError,
    WhetstoneTimeoutError,
)
from whetstone.client_http import encode_multipart, pages, segment
from whetstone.client_job import Job
from whetstone.client_transport import DEFAULT_TIMEOUT_S, Transport
from whetstone.core.catalog.model_facts import BaseModelInfo
from whetstone.core.job import LogEntry, LogLevelName, LogSource, MetricPoint
from whetstone.core.metric_series import DEFAULT_MAX_POINTS, merge_pages

__all__ = [
    "API_PREFIX",
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_URL",
    "MULTIPART_LIMIT_BYTES",
    "Connection",
    "Job",
    "JobConfig",
    "WhetstoneAPIError",
    "WhetstoneClient",
    "WhetstoneConfigError",
    "WhetstoneConnectionError",
    "WhetstoneError",
    "WhetstoneTimeoutError",
    "config_path",
    "encode_multipart",
    "load_job_config",
    "resolve_connection",
]

# API Gateway caps request bodies at 10 MB; larger datasets take the upload flow.
MULTIPART_LIMIT_BYTES = 8 * 1024 * 1024
_CHUNK_BYTES = 1024 * 1024


class LogFilters(TypedDict, total=False):
    """Which log lines to read; any left out: all of them."""

    log_type: LogSource | None  # build, deployment or training
    level: LogLevelName | None  # this level and above
    start_time: datetime | None  # from, included
    end_time: datetime | None  # until, excluded


class WhetstoneClient(Transport):
    """A typed client of every route of the API."""

    # -- configuration -----------------------------------------------------------------------

    def base_models(
        self,
        *,
        family: str | None = None,
        method: str | None = None,
        max_parameters_b: float | None = None,
    ) -> list[BaseModelInfo]:
        return self._get(
            BaseModelsResponse,
            "/base-models",
            family=family,
            method=method,
            max_parameters_b=max_parameters_b,
        ).models

    def hardware_options(self) -> HardwareOptionsResponse:
        return self._get(HardwareOptionsResponse, "/hardware-options")

    def requirements(self, model_id: str) -> RequirementsResponse:
        return self._get(
            RequirementsResponse, f"/models/{urllib.parse.quote(model_id, safe='')}/requirements"
        )

    def validate_hardware(
        self,
        model_id: str,
        *,
        method: str | None = None,
        gpu_type: str | None = None,
        gpu_count: int | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> ValidateHardwareResponse:
        """Whether the model fits the hardware; unset arguments take the config's values, else
        the server's defaults."""
        body = _planning_body(model_id, method, gpu_type, gpu_count, config)
        return ValidateHardwareResponse.model_validate(
            self.request("POST", "/validate-hardware", json_body=body)
        )

    def estimate_cost(
        self,
        model_id: str,
        num_examples: int,
        *,
        method: str | None = None,
        gpu_type: str | None = None,
        gpu_count: int | None = None,
        epochs: int | None = None,
        tokens_per_example: int | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> EstimateCostResponse:
        body = _planning_body(model_id, method, gpu_type, gpu_count, config)
        body["num_examples"] = num_examples
        if epochs is not None:
            body["epochs"] = epochs
        if tokens_per_example is not None:
            body["tokens_per_example"] = tokens_per_example
        return EstimateCostResponse.model_validate(
            self.request("POST", "/estimate-cost", json_body=body)
        )

    def stats(self) -> UserStatsResponse:
        """The caller's stats over every job, every page read."""
        total = self._get(UserStatsResponse, "/stats")
        while total.next_token:
            total = total.plus(self._get(UserStatsResponse, "/stats", next_token=total.next_token))
        return total

    # -- datasets ----------------------------------------------------------------------------

    def validate_dataset(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        source: str | None = None,
        format: str | None = None,
        cutoff_length: int | None = None,
        max_samples: int | None = None,
        columns: Mapping[str, str] | None = None,
    ) -> DatasetValidationResponse:
        """Validate a local file (uploaded) or a source the server reads (s3://, hf://)."""
        if (path is None) == (source is None):
            raise WhetstoneConfigError("validate either a file path or a source, not both")
        options: dict[str, Any] = {
            "format": format,
            "cutoff_length": cutoff_length,
            "max_samples": max_samples,
            **{f"{name}_column": value for name, value in (columns or {}).items()},
        }
        options = {k: v for k, v in options.items() if v is not None}
        if source is not None:
            raw = self.request(
                "POST", "/datasets/validate", json_body={"source": source, **options}
            )
            return DatasetValidationResponse.model_validate(raw)
        file = Path(path)  # type: ignore[arg-type]
        body, content_type = encode_multipart(
            {k: str(v) for k, v in options.items()}, {"file": (file.name, read_file(file))}
        )
        raw = self.request("POST", "/datasets/validate", body=body, content_type=content_type)
        return DatasetValidationResponse.model_validate(raw)

    # -- jobs --------------------------------------------------------------------------------

    def create_job(
        self,
        config: JobConfig,
        dataset_path: str | os.PathLike[str],
        *,
        name: str | None = None,
        idempotency_key: str | None = None,
        allow_over_budget: bool = False,
    ) -> Job:
        """Create a job from a config (mapping or YAML/JSON file) and a local dataset file.

        Files up to 8 MB go in one multipart request; larger ones are uploaded first
        (POST /uploads, PUT the bytes) and named by their upload id. `allow_over_budget`
        creates it even past the organization's monthly budget.
        """
        config_name, spec = load_job_config(config)
        name = name or config_name
        dataset = Path(dataset_path)
        if not dataset.is_file():
            raise WhetstoneConfigError(f"no dataset file at {dataset}")
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if dataset.stat().st_size > MULTIPART_LIMIT_BYTES:
            upload = self.upload_dataset(dataset)
            section = dict(spec.get("dataset") or {})
            section["source"] = upload.upload_id
            return self.create_job_json(
                {**spec, "dataset": section},
                name=name,
                idempotency_key=idempotency_key,
                allow_over_budget=allow_over_budget,
            )
        config_json = {"name": name, "spec": spec, "allow_over_budget": allow_over_budget}
        body, content_type = encode_multipart(
            {"config": json.dumps(config_json)},
            {"file": (dataset.name, read_file(dataset))},
        )
        raw = self.request("POST", "/jobs", body=body, content_type=content_type, headers=headers)
        return Job(self, JobResponse.model_validate(raw))

    def create_job_json(
        self,
        spec: Mapping[str, Any],
        *,
        name: str | None = None,
        idempotency_key: str | None = None,
        allow_over_budget: bool = False,
    ) -> Job:
        """Create a job whose spec.dataset.source names its data (upload id, s3://, hf://)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = {"name": name, "spec": dict(spec), "allow_over_budget": allow_over_budget}
        raw = self.request("POST", "/jobs/json", json_body=body, headers=headers)
        return Job(self, JobResponse.model_validate(raw))

    def upload_dataset(self, path: str | os.PathLike[str]) -> UploadResponse:
        """Upload a file for a later job: to the presigned URL (aws) or the API path (local)."""
        file = Path(path)
        upload = UploadResponse.model_validate(self.request("POST", "/uploads"))
        size = file.stat().st_size
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        target = upload.url or upload.path
        # A presigned URL carries its own signature; a bearer token would break it.
        with (
            file.open("rb") as stream,
            self._open(
                "PUT", target, data=stream, headers=headers, authenticate=upload.url is None
            ) as response,
        ):
            response.read()
        return upload

    def list_jobs(
        self,
        *,
        status: str | None = None,
        method: str | None = None,
        base_model: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = 100,
    ) -> Iterator[JobResponse]:
        """Every matching job, newest first, fetching pages as the iteration goes."""

        def page(cursor: str | None) -> tuple[list[JobResponse], str | None]:
            found = self._get(
                JobListResponse,
                "/jobs",
                status=status,
                method=method,
                base_model=base_model,
                created_after=created_after,
                created_before=created_before,
                limit=page_size,
                next_token=cursor,
            )
            return found.jobs, found.next_token

        return pages(page)

    def get_job(self, job_id: str) -> Job:
        return Job(self, self.get_job_record(job_id))

    def get_job_record(self, job_id: str) -> JobResponse:
        return self._get(JobResponse, f"/jobs/{segment(job_id)}")

    def job(self, job_id: str) -> Job:
        """A handle on a job, without fetching it."""
        return Job(self, None, job_id=job_id)

    def stop_job(self, job_id: str) -> JobResponse:
        return JobResponse.model_validate(self.request("POST", f"/jobs/{segment(job_id)}/stop"))

    def pause_job(self, job_id: str) -> JobResponse:
        """Checkpoint a deploying or training job and release its compute (pausing, paused)."""
        return JobResponse.model_validate(self.request("POST", f"/jobs/{segment(job_id)}/pause"))

    def resume_job(
        self, job_id: str, *, max_cost_usd: float | None = None, allow_over_budget: bool = False
    ) -> JobResponse:
        """Relaunch a paused job from its checkpoint; `max_cost_usd` replaces its cost cap
        (needed for a job paused at its cap); `allow_over_budget` resumes it even when its
        remaining estimate passes the organization's monthly budget."""
        params = {"max_cost_usd": max_cost_usd, "allow_over_budget": allow_over_budget or None}
        raw = self.request("POST", f"/jobs/{segment(job_id)}/resume", params=params)
        return JobResponse.model_validate(raw)

    def delete_job(self, job_id: str) -> None:
        self.request("DELETE", f"/jobs/{segment(job_id)}")

    def logs_page(
        self,
        job_id: str,
        *,
        limit: int = 1000,
        next_token: str | None = None,
        **filters: Unpack[LogFilters],
    ) -> tuple[list[LogEntry], str | None]:
        """One page of log entries, oldest first, and the token of the next page."""
        path = f"/jobs/{segment(job_id)}/logs"
        page = self._get(LogPageResponse, path, limit=limit, next_token=next_token, **filters)
        return page.logs, page.next_token

    def logs(
        self, job_id: str, *, page_size: int = 1000, **filters: Unpack[LogFilters]
    ) -> Iterator[LogEntry]:
        """Every matching log entry, oldest first, across pages."""
        return pages(
            lambda cursor: self.logs_page(job_id, limit=page_size, next_token=cursor, **filters)
        )

    def metrics(
        self,
        job_id: str,
        *,
        names: list[str] | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
        max_points: int | None = None,
    ) -> dict[str, list[MetricPoint]]:
        """Each metric series by name, points ordered by step, every page read (a long
        series comes in pages of steps, `next_step`), downsampled to `max_points`."""
        pages: list[dict[str, list[MetricPoint]]] = []
        start = min_step
        while True:
            page = self._get(
                MetricSeriesResponse,
                f"/jobs/{segment(job_id)}/metrics",
                names=",".join(names) if names else None,
                min_step=start,
                max_step=max_step,
                max_points=max_points,
            )
            pages.append(page.series)
            if page.next_step is None:
                return merge_pages(pages, max_points or DEFAULT_MAX_POINTS)
            start = page.next_step

    def evaluation(self, job_id: str) -> EvaluationResponse:
        """The job's evaluation report: base and fine-tuned scores on held-out prompts."""
        return self._get(EvaluationResponse, f"/jobs/{segment(job_id)}/evaluation")

    def download_link(
        self, job_id: str, *, artifact: ArtifactName | None = None, step: int | None = None
    ) -> DownloadLinkResponse:
        """Where to fetch an archive of a completed job: `artifact` model (the default),
        adapter, merged or checkpoint (with `step`; a stopped job's checkpoints too)."""
        return self._get(
            DownloadLinkResponse, f"/jobs/{segment(job_id)}/download", artifact=artifact, step=step
        )

    def download(
        self,
        job_id: str,
        path: str | os.PathLike[str],
        *,
        artifact: ArtifactName | None = None,
        step: int | None = None,
    ) -> Path:
        """Stream an archive of a completed job to `path` (a folder gets the archive's file
        name: <job_id>.tar.gz for the model, <job_id>-checkpoint-<step>.tar.gz ...)."""
        link = self.download_link(job_id, artifact=artifact, step=step)
        target = Path(path)
        if target.is_dir():  # the server names the file; only its last part is taken
            target = target / Path(link.filename).name
        if link.url is None:
            raise WhetstoneAPIError(200, "no_download_url", "the server returned no download URL")
        server_relative = link.url.startswith("/")
        partial = target.with_name(target.name + ".part")
        try:
            with self._open("GET", link.url, authenticate=server_relative) as response:
                with partial.open("wb") as out:
                    shutil.copyfileobj(response, out, _CHUNK_BYTES)
        except BaseException as error:
            partial.unlink(missing_ok=True)
            if isinstance(error, TimeoutError | ConnectionError):
                reason = str(error) or type(error).__name__
                raise WhetstoneConnectionError(link.url, reason) from error
            raise
        partial.replace(target)
        return target

    # -- deployments -------------------------------------------------------------------------

    def deploy(self, job_id: str, *, max_lora_rank: int | None = None) -> DeploymentResponse:
        """Start serving a completed job's model; the deployment, starting."""
        raw = self.request(
            "POST", f"/jobs/{segment(job_id)}/deploy", params={"max_lora_rank": max_lora_rank}
        )
        return DeploymentResponse.model_validate(raw)

    def get_deployment(self, job_id: str) -> DeploymentResponse:
        """The job's deployment, its readiness as the server sees it now."""
        return self._get(DeploymentResponse, f"/jobs/{segment(job_id)}/deployment")

    def delete_deployment(self, job_id: str) -> None:
        """Stop serving the job's model (the record stays, deleted)."""
        self.request("DELETE", f"/jobs/{segment(job_id)}/deployment")

    # -- API keys (aws; a signed-in user's token, not a key) ---------------------------------

    def create_api_key(
        self, name: str, *, expires_in_days: int | None = None
    ) -> CreatedApiKeyResponse:
        """A new key of your organization, with its secret: shown this once."""
        body = {"name": name, "expires_in_days": expires_in_days}
        raw = self.request("POST", "/api-keys", json_body=body)
        return CreatedApiKeyResponse.model_validate(raw)

    def list_api_keys(self) -> list[ApiKeyResponse]:
        """Your organization's keys, newest first, without their secrets."""
        return self._get(ApiKeyListResponse, "/api-keys").api_keys

    def revoke_api_key(self, key_id: str) -> None:
        """Revoke a key: requests made with it are refused from now on."""
        self.request("DELETE", f"/api-keys/{segment(key_id)}")


def _planning_body(
    model_id: str,
    method: str | None,
    gpu_type: str | None,
    gpu_count: int | None,
    config: Mapping[str, Any] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model_id": model_id,
        "method": method,
        "gpu_type": gpu_type,
        "gpu_count": gpu_count,
        "config": dict(config) if config else None,
    }
    return {k: v for k, v in body.items() if v is not None}
