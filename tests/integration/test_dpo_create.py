"""Creating a dpo job: its data must be preference pairs, and only dpo takes them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.apigw import ApiResponse, call_api, multipart
from support.jobs import RecordingOrchestrator

API = "/api/v1/fine-tuning"
MODEL = "qwen2.5-0.5b-instruct"


def _pairs(count: int = 120) -> bytes:
    rows = [
        {"prompt": f"q{i}?", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(count)
    ]
    return "\n".join(json.dumps(row) for row in rows).encode()


def _chat(count: int = 120) -> bytes:
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
        for i in range(count)
    ]
    return "\n".join(json.dumps(row) for row in rows).encode()


def _create(spec: dict[str, Any], data: bytes) -> ApiResponse:
    body, content_type = multipart(
        {"config": json.dumps({"base_model": MODEL, **spec})}, {"file": ("train.jsonl", data)}
    )
    return call_api("POST", f"{API}/jobs", body=body, headers={"content-type": content_type})


def test_a_dpo_job_on_preference_pairs_is_created(orchestrator: RecordingOrchestrator) -> None:
    # Given preference pairs and a dpo job training a LoRA adapter
    # When the job is created
    dpo = {"method": "dpo", "dpo": {"beta": 0.2, "tuning": "lora"}}
    response = _create({**dpo, "training": {"batch_size": 2}}, _pairs())
    # Then it is accepted and started
    assert response.status == 201, response.body
    assert response.body["job_id"] in orchestrator.started


@pytest.mark.parametrize(
    ("method", "data", "says"),
    [("dpo", _chat(), "method dpo trains on preference pairs"), ("lora", _pairs(), "method: dpo")],
)
def test_a_method_and_data_that_disagree_are_refused_at_create(
    orchestrator: RecordingOrchestrator, method: str, data: bytes, says: str
) -> None:
    # Given a dpo job on chat data, or a lora job on preference pairs
    # When it is created
    response = _create({"method": method, "training": {"batch_size": 2}}, data)
    # Then it is refused with the mismatch code, saying what to change, and nothing starts
    assert response.status == 422
    assert response.body["code"] == "dataset_invalid"
    errors = response.body["details"]["errors"]
    assert errors[0]["code"] == "method_data_mismatch" and says in errors[0]["message"]
    assert orchestrator.started == []
