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
import secrets
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import yaml
from pydantic import BaseModel

from whetstone.api.paths import API_PREFIX
from whetstone.api.planning_models import (
    BaseModelsResponse,
    EstimateCostResponse,
    HardwareOptionsResponse,
    RequirementsResponse,
    ValidateHardwareResponse,
)
from whetstone.core.catalog.model_facts import BaseModelInfo
from whetstone.core.datasets.report import ValidationReport
from whetstone.core.job import (
    Deployment,
    JobRecord,
    LogEntry,
    LogLevelName,
    LogSource,
    MetricPoint,
)
from whetstone.core.lifecycle import TERMINAL_STATUSES
from whetstone.service.artifacts import ArtifactKind, DownloadLink
from whetstone.service.stats import UserStats
from whetstone.service.uploads import Upload

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_CONFIG_PATH = Path("~/.config/whetstone/config.json")
# API Gateway caps request bodies at 10 MB; larger datasets take the upload flow.
MULTIPART_LIMIT_BYTES = 8 * 1024 * 1024
_CHUNK_BYTES = 1024 * 1024

ModelT = TypeVar("ModelT", bound=BaseModel)
JobConfig = Mapping[str, Any] | str | os.PathLike[str]


class WhetstoneError(Exception):
    """Base of the SDK's errors."""


class WhetstoneAPIError(WhetstoneError):
    """The server refused or failed a request; `code` is the server's stable error code."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class WhetstoneConnectionError(WhetstoneError):
    """The server could not be reached."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the Whetstone API at {url} ({reason}); start it with `whet serve` "
            "or point WHETSTONE_URL / --url at a running server"
        )
        self.url = url
        self.reason = reason


class WhetstoneTimeoutError(WhetstoneError, TimeoutError):
    """A job did not end within the time `Job.wait` was given."""


class WhetstoneConfigError(WhetstoneError):
    """A local input (config file, dataset path) is missing or malformed."""


@dataclass(frozen=True)
class Connection:
    """Where the API is and how to authenticate, once resolved."""

    base_url: str
    token: str | None


def config_path() -> Path:
    return Path(os.environ.get("WHETSTONE_CONFIG") or DEFAULT_CONFIG_PATH).expanduser()


def _config_file() -> dict[str, Any]:
    path = config_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise WhetstoneConfigError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise WhetstoneConfigError(f"{path} must hold a JSON object with 'url' and 'token'")
    return data


def resolve_connection(base_url: str | None = None, token: str | None = None) -> Connection:
    """Arguments first, then WHETSTONE_URL / WHETSTONE_TOKEN, then the config file."""
    file = _config_file()
    url = base_url or os.environ.get("WHETSTONE_URL") or file.get("url") or DEFAULT_URL
    token = token or os.environ.get("WHETSTONE_TOKEN") or file.get("token") or None
    return Connection(base_url=str(url).rstrip("/"), token=token)


def load_job_config(config: JobConfig) -> tuple[str | None, dict[str, Any]]:
    """(name, spec) of a job config: a mapping, or a YAML/JSON file holding a job spec or
    {name, spec}."""
    if isinstance(config, Mapping):
        data: Any = dict(config)
    else:
        path = Path(config)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise WhetstoneConfigError(f"cannot read the job config {path}: {error}") from error
        try:
            data = yaml.safe_load(text)  # YAML is a superset of JSON
        except yaml.YAMLError as error:
            raise WhetstoneConfigError(f"{path} is neither YAML nor JSON: {error}") from error
    if not isinstance(data, dict):
        raise WhetstoneConfigError("a job config is a mapping: a job spec, or {name, spec}")
    if "spec" in data:
        spec = data["spec"]
        if not isinstance(spec, dict):
            raise WhetstoneConfigError("the job config's 'spec' must be a mapping")
        name = data.get("name")
        return (str(name) if name is not None else None), dict(spec)
    name = data.pop("name", None)
    return (str(name) if name is not None else None), data


def encode_multipart(
    fields: Mapping[str, str], files: Mapping[str, tuple[str, bytes]]
) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type."""
    boundary = "whetstone-" + secrets.token_hex(16)
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, (filename, content) in files.items():
        safe = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{safe}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _query(params: Mapping[str, Any]) -> str:
    pairs = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        pairs.append((key, str(value)))
    return ("?" + urllib.parse.urlencode(pairs)) if pairs else ""


def _api_error(status: int, raw: bytes) -> WhetstoneAPIError:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and "code" in body and "message" in body:
        return WhetstoneAPIError(
            status, str(body["code"]), str(body["message"]), body.get("details")
        )
    if isinstance(body, dict) and "message" in body:  # powertools' own errors (unknown route)
        return WhetstoneAPIError(status, f"http_{status}", str(body["message"]))
    text = raw.decode("utf-8", "replace").strip()[:500]
    return WhetstoneAPIError(status, f"http_{status}", text or f"HTTP {status}")


class WhetstoneClient:
    """A typed client of every route of the API."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        connection = resolve_connection(base_url, token)
        self.base_url = connection.base_url
        self.token = connection.token
        self.timeout = timeout

    # -- transport ---------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def _open(
        self,
        method: str,
        path: str,
        *,
        data: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
    ) -> Any:
        """The open HTTP response; raises WhetstoneAPIError or WhetstoneConnectionError."""
        url = self._url(path)
        request = urllib.request.Request(url, data=data, method=method)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if authenticate and self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            with error:
                raise _api_error(error.code, error.read()) from None
        except urllib.error.URLError as error:
            raise WhetstoneConnectionError(self.base_url, str(error.reason)) from error
        except (TimeoutError, ConnectionError) as error:
            raise WhetstoneConnectionError(
                self.base_url, str(error) or type(error).__name__
            ) from error

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One API call; the parsed JSON response (None when empty)."""
        all_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            content_type = "application/json"
        if content_type:
            all_headers["Content-Type"] = content_type
        target = f"{API_PREFIX}{path}{_query(params or {})}"
        try:
            with self._open(method, target, data=body, headers=all_headers) as response:
                raw = response.read()
        except (TimeoutError, ConnectionError) as error:
            raise WhetstoneConnectionError(
                self.base_url, str(error) or type(error).__name__
            ) from error
        return json.loads(raw) if raw else None

    def _get(self, model: type[ModelT], path: str, **params: Any) -> ModelT:
        return model.model_validate(self.request("GET", path, params=params))

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
        """Whether the model fits the hardware; unset arguments take the server's defaults."""
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

    def stats(self) -> UserStats:
        return self._get(UserStats, "/stats")

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
    ) -> ValidationReport:
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
            return ValidationReport.model_validate(raw)
        file = Path(path)  # type: ignore[arg-type]
        body, content_type = encode_multipart(
            {k: str(v) for k, v in options.items()}, {"file": (file.name, _read(file))}
        )
        raw = self.request("POST", "/datasets/validate", body=body, content_type=content_type)
        return ValidationReport.model_validate(raw)

    # -- jobs --------------------------------------------------------------------------------

    def create_job(
        self,
        config: JobConfig,
        dataset_path: str | os.PathLike[str],
        *,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Create a job from a config (mapping or YAML/JSON file) and a local dataset file.

        Files up to 8 MB go in one multipart request; larger ones are uploaded first
        (POST /uploads, PUT the bytes) and named by their upload id.
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
                {**spec, "dataset": section}, name=name, idempotency_key=idempotency_key
            )
        body, content_type = encode_multipart(
            {"config": json.dumps({"name": name, "spec": spec})},
            {"file": (dataset.name, _read(dataset))},
        )
        raw = self.request("POST", "/jobs", body=body, content_type=content_type, headers=headers)
        return Job(self, JobRecord.model_validate(raw))

    def create_job_json(
        self,
        spec: Mapping[str, Any],
        *,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Create a job whose spec.dataset.source names its data (upload id, s3://, hf://)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        raw = self.request(
            "POST", "/jobs/json", json_body={"name": name, "spec": dict(spec)}, headers=headers
        )
        return Job(self, JobRecord.model_validate(raw))

    def upload_dataset(self, path: str | os.PathLike[str]) -> Upload:
        """Upload a file for a later job: to the presigned URL (aws) or the API path (local)."""
        file = Path(path)
        upload = Upload.model_validate(self.request("POST", "/uploads"))
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
    ) -> Iterator[JobRecord]:
        """Every matching job, newest first, fetching pages as the iteration goes."""
        cursor: str | None = None
        while True:
            page = self.request(
                "GET",
                "/jobs",
                params={
                    "status": status,
                    "method": method,
                    "base_model": base_model,
                    "created_after": created_after,
                    "created_before": created_before,
                    "limit": page_size,
                    "next_token": cursor,
                },
            )
            for item in page["jobs"]:
                yield JobRecord.model_validate(item)
            cursor = page.get("next_token")
            if not cursor:
                return

    def get_job(self, job_id: str) -> Job:
        return Job(self, self.get_job_record(job_id))

    def get_job_record(self, job_id: str) -> JobRecord:
        return self._get(JobRecord, f"/jobs/{_segment(job_id)}")

    def job(self, job_id: str) -> Job:
        """A handle on a job, without fetching it."""
        return Job(self, None, job_id=job_id)

    def stop_job(self, job_id: str) -> JobRecord:
        return JobRecord.model_validate(self.request("POST", f"/jobs/{_segment(job_id)}/stop"))

    def delete_job(self, job_id: str) -> None:
        self.request("DELETE", f"/jobs/{_segment(job_id)}")

    def logs_page(
        self,
        job_id: str,
        *,
        log_type: LogSource | None = None,
        level: LogLevelName | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        limit: int = 1000,
        next_token: str | None = None,
    ) -> tuple[list[LogEntry], str | None]:
        """One page of log entries, oldest first, and the token of the next page."""
        page = self.request(
            "GET",
            f"/jobs/{_segment(job_id)}/logs",
            params={
                "log_type": log_type,
                "level": level,
                "start_time": start_time,
                "end_time": end_time,
                "limit": limit,
                "next_token": next_token,
            },
        )
        return [LogEntry.model_validate(e) for e in page["logs"]], page.get("next_token")

    def logs(
        self,
        job_id: str,
        *,
        log_type: LogSource | None = None,
        level: LogLevelName | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        page_size: int = 1000,
    ) -> Iterator[LogEntry]:
        """Every matching log entry, oldest first, across pages."""
        cursor: str | None = None
        while True:
            entries, cursor = self.logs_page(
                job_id,
                log_type=log_type,
                level=level,
                start_time=start_time,
                end_time=end_time,
                limit=page_size,
                next_token=cursor,
            )
            yield from entries
            if not cursor:
                return

    def metrics(
        self,
        job_id: str,
        *,
        names: list[str] | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
        max_points: int | None = None,
    ) -> dict[str, list[MetricPoint]]:
        """Each metric series by name, points ordered by step."""
        body = self.request(
            "GET",
            f"/jobs/{_segment(job_id)}/metrics",
            params={
                "names": ",".join(names) if names else None,
                "min_step": min_step,
                "max_step": max_step,
                "max_points": max_points,
            },
        )
        return {
            name: [MetricPoint.model_validate(p) for p in points]
            for name, points in body["series"].items()
        }

    def download_link(
        self, job_id: str, *, artifact: ArtifactKind | str | None = None, step: int | None = None
    ) -> DownloadLink:
        """Where to fetch an archive of a completed job: `artifact` model (the default),
        adapter, merged or checkpoint (with `step`)."""
        return self._get(
            DownloadLink, f"/jobs/{_segment(job_id)}/download", artifact=artifact, step=step
        )

    def download(
        self,
        job_id: str,
        path: str | os.PathLike[str],
        *,
        artifact: ArtifactKind | str | None = None,
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

    def deploy(self, job_id: str, *, max_lora_rank: int | None = None) -> Deployment:
        """Start serving a completed job's model; the deployment, starting."""
        raw = self.request(
            "POST", f"/jobs/{_segment(job_id)}/deploy", params={"max_lora_rank": max_lora_rank}
        )
        return Deployment.model_validate(raw)

    def get_deployment(self, job_id: str) -> Deployment:
        """The job's deployment, its readiness as the server sees it now."""
        return self._get(Deployment, f"/jobs/{_segment(job_id)}/deployment")

    def delete_deployment(self, job_id: str) -> None:
        """Stop serving the job's model (the record stays, deleted)."""
        self.request("DELETE", f"/jobs/{_segment(job_id)}/deployment")


class Job:
    """A handle on one job: refresh it, wait for it, follow its logs, stop, download or
    deploy it."""

    def __init__(self, client: WhetstoneClient, record: JobRecord | None, *, job_id: str = ""):
        self.client = client
        self._record = record
        self.job_id = record.job_id if record is not None else job_id

    def __repr__(self) -> str:
        status = self._record.status if self._record is not None else "unknown"
        return f"Job({self.job_id!r}, status={status!s})"

    @property
    def record(self) -> JobRecord:
        """The job as last fetched (fetched now if it never was)."""
        if self._record is None:
            return self.refresh()
        return self._record

    @property
    def status(self) -> str:
        return str(self.record.status)

    def refresh(self) -> JobRecord:
        self._record = self.client.get_job_record(self.job_id)
        return self._record

    def pause(self, seconds: float) -> None:
        """Wait between two polls."""
        time.sleep(seconds)

    def wait(
        self,
        timeout: float | None = None,
        poll_s: float = 2.0,
        on_update: Callable[[JobRecord], None] | None = None,
    ) -> JobRecord:
        """Poll until the job is completed, failed or cancelled; the final record.

        `on_update` gets every record fetched, the final one included. Raises
        WhetstoneTimeoutError when `timeout` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self.refresh()
            if on_update is not None:
                on_update(record)
            if record.status in TERMINAL_STATUSES:
                return record
            if deadline is not None and time.monotonic() >= deadline:
                raise WhetstoneTimeoutError(
                    f"job {self.job_id} is still {record.status} after {timeout} s"
                )
            self.pause(poll_s)

    def follow(
        self,
        poll_s: float = 2.0,
        *,
        log_type: LogSource | None = None,
        level: LogLevelName | None = None,
    ) -> Iterator[LogEntry]:
        """Every log entry, then each new one as it arrives, until the job has ended."""
        last_time: datetime | None = None
        seen_at_last: Counter[str] = Counter()
        while True:
            ended = self.refresh().status in TERMINAL_STATUSES
            # Resume from the newest time seen; skip the entries already yielded at it.
            skip = Counter(seen_at_last)
            for entry in self.client.logs(
                self.job_id, log_type=log_type, level=level, start_time=last_time
            ):
                key = entry.model_dump_json()
                if entry.time == last_time and skip[key] > 0:
                    skip[key] -= 1
                    continue
                if last_time is None or entry.time > last_time:
                    last_time = entry.time
                    seen_at_last = Counter()
                seen_at_last[key] += 1
                yield entry
            if ended:
                return
            self.pause(poll_s)

    def stop(self) -> JobRecord:
        self._record = self.client.stop_job(self.job_id)
        return self._record

    def delete(self) -> None:
        self.client.delete_job(self.job_id)

    def logs(self, **filters: Any) -> Iterator[LogEntry]:
        return self.client.logs(self.job_id, **filters)

    def metrics(self, **filters: Any) -> dict[str, list[MetricPoint]]:
        return self.client.metrics(self.job_id, **filters)

    def download(
        self,
        path: str | os.PathLike[str],
        *,
        artifact: ArtifactKind | str | None = None,
        step: int | None = None,
    ) -> Path:
        return self.client.download(self.job_id, path, artifact=artifact, step=step)

    def deploy(self, *, max_lora_rank: int | None = None) -> Deployment:
        return self.client.deploy(self.job_id, max_lora_rank=max_lora_rank)

    def deployment(self) -> Deployment:
        return self.client.get_deployment(self.job_id)

    def undeploy(self) -> None:
        self.client.delete_deployment(self.job_id)

    def wait_for_deployment(
        self,
        timeout: float | None = None,
        poll_s: float = 2.0,
        on_update: Callable[[Deployment], None] | None = None,
    ) -> Deployment:
        """Poll the deployment until it is no longer starting (ready, failed or deleted).

        `on_update` gets every deployment fetched, the final one included. Raises
        WhetstoneTimeoutError when `timeout` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            deployment = self.deployment()
            if on_update is not None:
                on_update(deployment)
            if deployment.status != "starting":
                return deployment
            if deadline is not None and time.monotonic() >= deadline:
                raise WhetstoneTimeoutError(
                    f"the deployment of job {self.job_id} is still starting after {timeout} s"
                )
            self.pause(poll_s)


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


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise WhetstoneConfigError(f"cannot read {path}: {error}") from error
