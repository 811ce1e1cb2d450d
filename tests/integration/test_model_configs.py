"""Base models from any hub repo and from S3 are accepted at create: their config.json is
read where the API can reach it (the hub cache, the hub's file endpoint, the organization's
S3 keys), and otherwise the prepare stage reads it and the fit check happens there."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import boto3
import pytest
from support.apigw import call_api
from support.aws_workflow import CALLER, DATASET

from whetstone.core.datasets.prepared import PreparedData, SplitSize
from whetstone.core.errors import InvalidInputError, NotFoundError
from whetstone.core.layout import JobLayout
from whetstone.core.plan import EventSinkSettings
from whetstone.core.spec import JobSpec
from whetstone.service import workflow
from whetstone.service.hub_cache import HubRepo, cache_folders
from whetstone.service.jobs import NewJob, create_job
from whetstone.service.models import find_base_model
from whetstone.service.platform import Platform
from whetstone.settings import Settings

# A ~0.5B-parameter decoder's config.json, as the hub serves it.
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_key_value_heads": 4,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "torch_dtype": "bfloat16",
}
# A 70B-class config: no single T4 holds its full fine-tuning.
HUGE = {**CONFIG, "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80}


def _cache(repo: str, config: dict[str, object], *, revision: str = "main") -> None:
    """What `huggingface_hub` leaves after downloading the repo's config.json at `revision`."""
    (folder,) = cache_folders(HubRepo("model", repo))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / revision).write_text("0123abc")
    snapshot = folder / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / "config.json").write_text(json.dumps(config))


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, tuple[int, bytes]]]:
    """A stand-in for the hub's file endpoint (HF_ENDPOINT): path -> (status, body)."""
    answers: dict[str, tuple[int, bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answers.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield answers
    server.shutdown()


def test_a_hub_model_outside_the_catalog_is_read_from_the_cache_at_its_revision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an offline machine whose hub cache holds acme/tiny's config at the tag v1
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _cache("acme/tiny", CONFIG, revision="v1")

    # When the model is named with that revision, then its facts come from that config
    model = find_base_model("hf://acme/tiny@v1", Settings(), org_id="org-a")
    assert model is not None and model.id == "hf://acme/tiny@v1"
    assert model.architecture.num_layers == 24
    assert 0.3e9 < model.num_parameters < 0.7e9
    # and at another revision, which the cache lacks, it cannot be read offline
    assert find_base_model("hf://acme/tiny@v2", Settings(), org_id="org-a") is None


def test_the_hubs_file_endpoint_is_read_when_the_hub_is_online(
    hub: dict[str, tuple[int, bytes]],
) -> None:
    hub["/acme/online/resolve/main/config.json"] = (200, json.dumps(CONFIG).encode())
    hub["/acme/gated/resolve/main/config.json"] = (401, b"gated")

    model = find_base_model("hf://acme/online", Settings(), org_id="org-a")

    assert model is not None and model.architecture.hidden_size == 1024
    # a gated repo is left to the prepare stage, which has the trainer's token
    assert find_base_model("hf://acme/gated", Settings(), org_id="org-a") is None
    # and a repo the hub does not have is refused at once
    with pytest.raises(NotFoundError) as missing:
        find_base_model("hf://acme/nothing", Settings(), org_id="org-a")
    assert missing.value.code == "model_not_found"


@pytest.mark.parametrize(
    "ref", ["hf://../etc", "hf:///etc/passwd", "hf://acme/tiny/extra", "hf://acme/..@main"]
)
def test_a_path_is_never_a_hub_model(ref: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        find_base_model(ref, Settings(), org_id="org-a")
    assert refused.value.code == "invalid_model"


def test_an_s3_model_is_read_from_the_organizations_own_keys_only(
    aws_platform: Platform,
) -> None:
    # Given a model folder under org-a's incoming prefix, and one under org-b's
    settings = aws_platform.settings
    s3 = boto3.client("s3")
    for org in (CALLER.org_id, "org-b"):
        s3.put_object(
            Bucket=settings.bucket,
            Key=f"incoming/{org}/models/tiny/config.json",
            Body=json.dumps(CONFIG).encode(),
        )
    own = f"s3://{settings.bucket}/incoming/{CALLER.org_id}/models/tiny"

    model = find_base_model(own, settings, org_id=CALLER.org_id)

    assert model is not None and model.architecture.num_layers == 24
    with pytest.raises(InvalidInputError) as refused:
        find_base_model(
            f"s3://{settings.bucket}/incoming/org-b/models/tiny", settings, org_id=CALLER.org_id
        )
    assert refused.value.code == "source_not_allowed"
    with pytest.raises(InvalidInputError) as missing:
        find_base_model(f"{own}-absent", settings, org_id=CALLER.org_id)
    assert missing.value.code == "model_config_missing"


def _deferred_job(platform: Platform, base_model: str) -> str:
    """A job created while its hub model's config cannot be read (offline, not cached)."""
    spec = JobSpec(base_model=base_model, method="full")
    job = create_job(platform, CALLER, NewJob(spec=spec), dataset=DATASET, filename="chat.jsonl")
    workflow.write_plan(platform, job.job_id, EventSinkSettings(kind="stdout"))
    return job.job_id


def _prepared(platform: Platform, job_id: str, config: dict[str, object] | None) -> None:
    """What the prepare stage leaves: the split sizes and the config.json it read."""
    prepared = PreparedData(
        valid=True,
        format="openai",
        splits={"train": SplitSize(examples=800, tokens=80_000)},
        base_model_config=config,
    )
    job = platform.jobs.get(job_id)
    assert job is not None
    platform.blobs.put(JobLayout.of(job).prepared, prepared.model_dump_json().encode())


def test_a_model_the_api_cannot_read_is_estimated_after_the_prepare_stage(
    aws_platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an API with the hub offline: acme/private's config cannot be read at create
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    job_id = _deferred_job(aws_platform, "hf://acme/private")
    created = aws_platform.jobs.get(job_id)
    assert created is not None and created.estimate is None and created.required_gib is None

    # When the prepare stage read its config (a 0.5B model, which a T4 holds)
    _prepared(aws_platform, job_id, CONFIG)
    recorded = workflow.record_prepared(aws_platform, job_id)

    # Then the job is estimated and fit-checked from it
    assert recorded.estimate is not None and recorded.estimate.estimated_hours > 0
    assert recorded.required_gib is not None and recorded.required_gib > 0


def test_a_model_found_too_big_by_the_prepare_stage_fails_with_the_fit(
    aws_platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    too_big = _deferred_job(aws_platform, "hf://acme/huge")
    unknown = _deferred_job(aws_platform, "hf://acme/unreadable")
    _prepared(aws_platform, too_big, HUGE)
    _prepared(aws_platform, unknown, None)

    with pytest.raises(workflow.ModelDoesNotFit, match="GiB per GPU") as refused:
        workflow.record_prepared(aws_platform, too_big)
    assert refused.value.details["fits"] is False
    with pytest.raises(workflow.ModelFactsUnknown, match="config.json"):
        workflow.record_prepared(aws_platform, unknown)


def test_a_local_job_refuses_a_hub_model_it_cannot_reach(tmp_path: Path) -> None:
    """Locally the trainer runs here: an uncached hub model offline is refused at create."""
    from whetstone.runtime import get_platform

    platform = get_platform()
    spec = JobSpec(base_model="hf://acme/uncached", method="lora")
    with pytest.raises(InvalidInputError) as refused:
        create_job(platform, CALLER, NewJob(spec=spec), dataset=DATASET, filename="chat.jsonl")
    assert refused.value.code == "hf_unavailable"


def test_requirements_of_a_hub_model_outside_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given acme/tiny's config in the (offline) hub cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _cache("acme/tiny", CONFIG)

    # When its requirements are asked for, then they come from its config
    response = call_api(
        "GET", f"/api/v1/fine-tuning/models/{quote('hf://acme/tiny', safe='')}/requirements"
    )

    assert response.status == 200, response.body
    assert response.body["model"]["id"] == "hf://acme/tiny"
    assert {m["method"] for m in response.body["methods"]} >= {"lora", "full"}
