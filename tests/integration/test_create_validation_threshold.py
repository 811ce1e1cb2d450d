"""Create validates a dataset at once only up to `sync_validation_max_bytes`; a larger one
is left, unread, to the trainer's prepare stage."""

from __future__ import annotations

import json

import pytest
from support.apigw import call_api, multipart

from whetstone.runtime import get_platform
from whetstone.settings import get_settings

API = "/api/v1/fine-tuning"
CONFIG = {"base_model": "qwen2.5-0.5b-instruct", "hardware": {"gpu_type": "nvidia-l4"}}
BROKEN = b"{not json\n" * 200


def _create(data: bytes) -> tuple[int, dict[str, object]]:
    body, content_type = multipart({"config": json.dumps(CONFIG)}, {"file": ("d.jsonl", data)})
    created = call_api("POST", f"{API}/jobs", body=body, headers={"content-type": content_type})
    return created.status, created.body


def test_a_small_invalid_upload_is_refused_at_create() -> None:
    status, body = _create(BROKEN)

    assert status == 422 and body["code"] == "dataset_invalid"


def test_an_upload_over_the_threshold_is_accepted_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a threshold below the upload's size
    monkeypatch.setenv("WHETSTONE_SYNC_VALIDATION_MAX_BYTES", "100")
    get_settings.cache_clear()
    get_platform.cache_clear()

    # When an invalid dataset is uploaded
    status, body = _create(BROKEN)

    # Then the job is created; its dataset is the prepare stage's to judge
    assert status == 201, body
    job = get_platform().jobs.get(str(body["job_id"]))
    assert job is not None and job.dataset.num_examples is None
