"""GET /jobs/{id}/download with each artifact choice and each refusal: through the Lambda
handler on the local stores, over real HTTP from `whet serve`, and on the aws stores
(moto), where the link is a presigned S3 GET valid one hour."""

from __future__ import annotations

import io
import json
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from support.apigw import call_api
from support.aws_workflow import CALLER, new_job
from support.jobs import RecordingOrchestrator, make_job

from whetstone.cli.tokens import DEFAULT_CALLER
from whetstone.core.job import Caller, JobRecord
from whetstone.core.layout import CHECKPOINT_COMPLETE_MARKER, JobLayout, OutputNames
from whetstone.core.lifecycle import JobStatus
from whetstone.core.spec import Method
from whetstone.ports import ComputeState, ComputeStatus
from whetstone.runtime import get_platform
from whetstone.service import workflow
from whetstone.service.platform import Platform
from whetstone.service.records import transition

API = "/api/v1/fine-tuning"
OTHER_ORG = Caller(user_id="mallory", org_id="other-org")

ADAPTER = {
    "model/adapter_config.json": b'{"r": 8, "target_modules": ["q_proj", "v_proj"]}',
    "model/adapter_model.safetensors": b"adapter-weights",
    "model/tokenizer.json": b"{}",
}
FULL_MODEL = {
    "model/config.json": b"{}",
    "model/model.safetensors": b"full-weights",
}
MERGED = {
    "merged/config.json": b"{}",
    "merged/model.safetensors": b"merged-weights",
}


def checkpoint(step: int, *, complete: bool = True) -> dict[str, bytes]:
    """A checkpoint folder as the trainer publishes it, with its resume-only state."""
    folder = OutputNames.checkpoint(step) + "/"
    files = {
        folder + "adapter_model.safetensors": f"weights at {step}".encode(),
        folder + "trainer_state.json": json.dumps({"global_step": step}).encode(),
        folder + "optimizer.pt": b"optimizer state",
        folder + "scheduler.pt": b"scheduler state",
        folder + "rng_state.pth": b"rng state",
    }
    if complete:
        files[folder + CHECKPOINT_COMPLETE_MARKER] = b""
    return files


LORA_OUTPUT = {**ADAPTER, **checkpoint(2), **checkpoint(4), **checkpoint(6, complete=False)}


def trained_job(
    platform: Platform, org_id: str, output: dict[str, bytes], method: Method = Method.LORA
) -> JobRecord:
    """A job whose trainer left `output`, finalized by the workflow (archives built)."""
    job = make_job(org_id, method=method)
    platform.jobs.create(job.with_status(JobStatus.PENDING, "job created"))
    return finish(platform, job, output)


def finish(platform: Platform, job: JobRecord, output: dict[str, bytes]) -> JobRecord:
    prefix = JobLayout.of(job).output
    for name, data in output.items():
        platform.blobs.put(prefix + name, data)
    for status in (JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING):
        transition(platform, job.job_id, status)
    return workflow.finalize(platform, job.job_id)


class StoppedTrainer:
    """The compute of a trainer that has already stopped."""

    def launch(self, job: JobRecord, plan_uri: str, image: str) -> None:
        raise AssertionError("a stopped job launches nothing")

    def status(self, job: JobRecord) -> ComputeStatus:
        return ComputeStatus(state=ComputeState.MISSING)

    def stop(self, job: JobRecord) -> None:
        pass


def stopped_job(platform: Platform, output: dict[str, bytes]) -> JobRecord:
    """A job stopped during training whose trainer left `output`, cancelled by the workflow."""
    job = make_job(DEFAULT_CALLER.org_id)
    platform.jobs.create(job.with_status(JobStatus.PENDING, "job created"))
    prefix = JobLayout.of(job).output
    for name, data in output.items():
        platform.blobs.put(prefix + name, data)
    for status in (JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING):
        transition(platform, job.job_id, status)
    transition(platform, job.job_id, JobStatus.STOPPING, "stop requested")
    workflow.cancel(platform, job.job_id, StoppedTrainer())
    stopped = platform.jobs.get(job.job_id)
    assert stopped is not None and stopped.status is JobStatus.CANCELLED
    return stopped


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {
            info.name: tar.extractfile(info).read()  # type: ignore[union-attr]
            for info in tar.getmembers()
        }


def inside(files: dict[str, bytes], folder: str) -> dict[str, bytes]:
    return {name.removeprefix(folder): data for name, data in files.items()}


def download(
    job_id: str, query: str = "", caller: Caller = DEFAULT_CALLER
) -> tuple[int, dict[str, Any]]:
    response = call_api("GET", f"{API}/jobs/{job_id}/download{query}", caller=caller)
    return response.status, response.body


@pytest.fixture
def platform(orchestrator: RecordingOrchestrator) -> Platform:
    return get_platform()


@pytest.fixture
def lora(platform: Platform) -> JobRecord:
    return trained_job(platform, DEFAULT_CALLER.org_id, {**LORA_OUTPUT, **MERGED})


# -- local runtime, through the handler --------------------------------------------------------


def test_given_a_completed_job_when_no_artifact_is_named_then_the_final_model_is_linked(
    lora: JobRecord,
) -> None:
    status, link = download(lora.job_id)

    assert status == 200
    assert link["artifact"] == "model" and link["step"] is None
    assert link["size_bytes"] == get_platform().blobs.size(JobLayout.of(lora).model_archive)
    assert link["filename"] == f"{lora.job_id}.tar.gz" and link["expires_in_s"] == 3600
    assert link["url"] == f"{API}/jobs/{lora.job_id}/download/file?artifact=model"


@pytest.mark.parametrize(
    ("query", "key", "filename"),
    [
        ("?artifact=adapter", lambda layout: layout.model_archive, "{job}-adapter.tar.gz"),
        ("?artifact=merged", lambda layout: layout.merged_archive, "{job}-merged.tar.gz"),
        (
            "?artifact=checkpoint&step=4",
            lambda layout: layout.checkpoint_archive(4),
            "{job}-checkpoint-4.tar.gz",
        ),
    ],
)
def test_given_a_completed_lora_job_when_an_artifact_is_named_then_its_archive_is_linked(
    lora: JobRecord, query: str, key: Callable[[JobLayout], str], filename: str
) -> None:
    status, link = download(lora.job_id, query)

    assert status == 200, link
    assert link["size_bytes"] == get_platform().blobs.size(key(JobLayout.of(lora)))
    assert link["filename"] == filename.format(job=lora.job_id)
    assert link["url"].startswith(f"{API}/jobs/{lora.job_id}/download/file?artifact=")


def test_given_an_incomplete_checkpoint_when_its_step_is_asked_then_404_lists_the_steps(
    lora: JobRecord,
) -> None:
    status, body = download(lora.job_id, "?artifact=checkpoint&step=6")

    assert status == 404 and body["code"] == "checkpoint_not_found"
    assert body["details"] == {"available_steps": [2, 4]}
    assert "no checkpoint at step 6" in body["message"] and "steps 2, 4" in body["message"]


def test_given_a_checkpoint_choice_without_a_step_then_422_lists_the_steps(
    lora: JobRecord,
) -> None:
    status, body = download(lora.job_id, "?artifact=checkpoint")

    assert status == 422 and body["code"] == "step_required"
    assert body["details"] == {"available_steps": [2, 4]}


def test_given_a_step_with_another_artifact_then_422_says_step_picks_a_checkpoint(
    lora: JobRecord,
) -> None:
    status, body = download(lora.job_id, "?artifact=merged&step=2")
    assert status == 422 and body["code"] == "step_not_allowed"


@pytest.mark.parametrize("query", ["?artifact=weights", "?artifact=checkpoint&step=-1"])
def test_given_an_unknown_artifact_or_a_negative_step_then_400_names_the_parameter(
    lora: JobRecord, query: str
) -> None:
    status, body = download(lora.job_id, query)
    assert status == 400 and body["code"] == "validation_error"
    assert body["details"][0]["loc"].startswith("query.")


def test_given_a_full_fine_tuning_job_when_its_adapter_is_asked_then_409_points_to_the_model(
    platform: Platform,
) -> None:
    job = trained_job(platform, "local", FULL_MODEL, Method.FULL)

    adapter_status, adapter = download(job.job_id, "?artifact=adapter")
    merged_status, merged = download(job.job_id, "?artifact=merged")
    model_status, _ = download(job.job_id)

    assert adapter_status == 409 and adapter["code"] == "no_adapter"
    assert "artifact=model" in adapter["message"]
    assert merged_status == 409 and merged["code"] == "no_merged_model"
    assert "full fine-tuning" in merged["message"]
    assert model_status == 200


def test_given_a_lora_job_without_a_merged_model_then_409_says_how_to_merge_one(
    platform: Platform,
) -> None:
    job = trained_job(platform, "local", ADAPTER)

    status, body = download(job.job_id, "?artifact=merged")

    assert status == 409 and body["code"] == "no_merged_model"
    assert "artifact=adapter" in body["message"] and "merge_and_unload()" in body["message"]


def test_given_a_job_without_checkpoints_when_one_is_asked_then_404_says_none_were_kept(
    platform: Platform,
) -> None:
    job = trained_job(platform, "local", ADAPTER)

    status, body = download(job.job_id, "?artifact=checkpoint&step=1")

    assert status == 404 and body["details"] == {"available_steps": []}
    assert "kept no checkpoints" in body["message"]


def test_given_a_stopped_job_when_a_checkpoint_it_kept_is_asked_then_its_archive_is_linked(
    platform: Platform,
) -> None:
    job = stopped_job(platform, {**checkpoint(2), **checkpoint(4), **checkpoint(6, complete=False)})

    status, link = download(job.job_id, "?artifact=checkpoint&step=4")
    with platform.blobs.open(JobLayout.of(job).checkpoint_archive(4)) as stream:
        archive = stream.read()

    assert status == 200, link
    assert link["filename"] == f"{job.job_id}-checkpoint-4.tar.gz"
    assert set(members(archive)) == {"adapter_model.safetensors", "trainer_state.json"}


def test_given_a_stopped_job_then_its_model_and_checkpoint_refusals_name_the_same_steps(
    platform: Platform,
) -> None:
    job = stopped_job(platform, {**checkpoint(2), **checkpoint(4)})

    model_status, model = download(job.job_id)
    step_status, step = download(job.job_id, "?artifact=checkpoint")

    assert model_status == 409 and model["code"] == "no_artifacts"
    assert "stopped before training finished" in model["message"]
    assert "artifact=checkpoint&step=N" in model["message"]
    assert step_status == 422 and step["code"] == "step_required"
    assert model["details"] == step["details"] == {"available_steps": [2, 4]}
    assert "its checkpoints are at steps 2, 4" in model["message"]
    assert "its checkpoints are at steps 2, 4" in step["message"]


def test_given_a_job_stopped_before_any_checkpoint_then_both_refusals_say_none_were_kept(
    platform: Platform,
) -> None:
    job = stopped_job(platform, {})

    model_status, model = download(job.job_id)
    step_status, step = download(job.job_id, "?artifact=checkpoint&step=1")

    assert model_status == 409 and step_status == 404
    assert "it kept no checkpoints" in model["message"]
    assert "it kept no checkpoints" in step["message"]


@pytest.mark.parametrize("query", ["?artifact=adapter", "?artifact=checkpoint&step=2"])
def test_given_a_running_job_when_an_artifact_is_asked_then_409_no_artifacts(
    platform: Platform, query: str
) -> None:
    job = make_job("local")
    platform.jobs.create(job)
    for moved in (JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING):
        transition(platform, job.job_id, moved)

    status, body = download(job.job_id, query)

    assert status == 409 and body["code"] == "no_artifacts"


@pytest.mark.parametrize("suffix", ["", "/file"])
def test_given_another_organizations_job_then_every_choice_is_not_found(
    lora: JobRecord, suffix: str
) -> None:
    response = call_api(
        "GET",
        f"{API}/jobs/{lora.job_id}/download{suffix}?artifact=checkpoint&step=2",
        caller=OTHER_ORG,
    )
    assert response.status == 404 and response.body["code"] == "job_not_found"


def test_the_openapi_document_lists_the_download_choices() -> None:
    document = call_api("GET", "/api/v1/openapi.json", caller=None).body
    operation = document["paths"][f"{API}/jobs/{{job_id}}/download"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}

    assert set(parameters) == {"job_id", "artifact", "step"}
    assert parameters["artifact"]["in"] == parameters["step"]["in"] == "query"
    assert "checkpoint" in json.dumps(parameters["artifact"]["schema"])


# -- local runtime, over HTTP ------------------------------------------------------------------


def fetch(server_url: str, path: str) -> tuple[int, bytes, dict[str, str]]:
    with urllib.request.urlopen(server_url + path, timeout=30) as response:
        return response.status, response.read(), {k.lower(): v for k, v in response.headers.items()}


def test_over_http_each_choice_serves_its_archive(server_url: str, lora: JobRecord) -> None:
    archives = {}
    for query in ("", "?artifact=adapter", "?artifact=merged", "?artifact=checkpoint&step=2"):
        _, raw, _ = fetch(server_url, f"{API}/jobs/{lora.job_id}/download{query}")
        link = json.loads(raw)
        status, body, headers = fetch(server_url, link["url"])
        assert status == 200 and headers["content-type"] == "application/gzip"
        assert f'filename="{link["filename"]}"' in headers["content-disposition"]
        archives[query] = members(body)

    assert archives[""] == archives["?artifact=adapter"] == inside(ADAPTER, "model/")
    assert archives["?artifact=merged"] == inside(MERGED, "merged/")
    assert archives["?artifact=checkpoint&step=2"] == {
        "adapter_model.safetensors": b"weights at 2",
        "trainer_state.json": b'{"global_step": 2}',
    }


def test_over_http_a_missing_step_is_refused_with_the_available_ones(
    server_url: str, lora: JobRecord
) -> None:
    url = f"{server_url}{API}/jobs/{lora.job_id}/download/file?artifact=checkpoint&step=3"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=30)

    body = json.loads(refused.value.read())
    assert refused.value.code == 404 and body["details"] == {"available_steps": [2, 4]}


# -- aws runtime: S3 and presigned URLs, through the handler -----------------------------------


def test_on_aws_each_choice_is_a_presigned_get_valid_one_hour(aws_platform: Platform) -> None:
    import requests  # moto answers requests to S3 URLs; nothing leaves the machine

    job = finish(aws_platform, new_job(aws_platform), {**LORA_OUTPUT, **MERGED})
    bucket = aws_platform.settings.bucket
    expected = {
        "": inside(ADAPTER, "model/"),
        "?artifact=merged": inside(MERGED, "merged/"),
        "?artifact=checkpoint&step=4": {
            "adapter_model.safetensors": b"weights at 4",
            "trainer_state.json": b'{"global_step": 4}',
        },
    }
    for query, files in expected.items():
        response = call_api("GET", f"{API}/jobs/{job.job_id}/download{query}", caller=CALLER)
        assert response.status == 200, response.body
        url = urllib.parse.urlsplit(response.body["url"])
        params = urllib.parse.parse_qs(url.query)

        assert bucket in url.netloc + url.path and f"/{job.job_id}/" in url.path
        assert params["X-Amz-Expires"] == ["3600"] and "X-Amz-Signature" in params
        fetched = requests.get(response.body["url"], timeout=30)
        assert fetched.status_code == 200 and members(fetched.content) == files


def test_on_aws_a_missing_checkpoint_lists_the_steps_in_s3(aws_platform: Platform) -> None:
    job = finish(aws_platform, new_job(aws_platform), LORA_OUTPUT)

    response = call_api(
        "GET", f"{API}/jobs/{job.job_id}/download?artifact=checkpoint&step=6", caller=CALLER
    )
    merged = call_api("GET", f"{API}/jobs/{job.job_id}/download?artifact=merged", caller=CALLER)

    assert response.status == 404 and response.body["details"] == {"available_steps": [2, 4]}
    assert merged.status == 409 and merged.body["code"] == "no_merged_model"
