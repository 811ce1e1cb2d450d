"""The trainer plan the workflow's prepare step writes for a job."""

from __future__ import annotations

import json

import pytest
from support.apigw import call_api, multipart

from whetstone.core.layout import JobLayout
from whetstone.core.plan import EventSinkSettings, TrainerPlan
from whetstone.runtime import get_platform
from whetstone.service import workflow

API = "/api/v1/fine-tuning"
ROWS = [{"prompt": f"Say {i}", "completion": str(i)} for i in range(120)]


def _plan_for(config: dict[str, object]) -> TrainerPlan:
    data = "\n".join(json.dumps(row) for row in ROWS).encode()
    body, content_type = multipart({"config": json.dumps(config)}, {"file": ("d.jsonl", data)})
    created = call_api("POST", f"{API}/jobs", body=body, headers={"content-type": content_type})
    assert created.status == 201, created.body
    job_id = created.body["job_id"]
    platform = get_platform()
    workflow.prepare(platform, job_id, EventSinkSettings(kind="stdout"))
    job = platform.jobs.get(job_id)
    assert job is not None
    with platform.blobs.open(JobLayout.of(job).plan) as stream:
        return TrainerPlan.model_validate_json(stream.read())


@pytest.mark.parametrize(
    ("method", "save_merged", "merges"),
    [
        ("lora", True, True),
        ("qlora", True, True),
        ("lora", False, False),
        ("full", True, False),  # no adapter to merge: the lora settings do not apply
    ],
)
def test_the_plan_merges_the_adapter_only_when_a_lora_job_asks(
    method: str, save_merged: bool, merges: bool
) -> None:
    config = {
        "base_model": "qwen2.5-0.5b-instruct",
        "method": method,
        "lora": {"save_merged": save_merged},
        "hardware": {"gpu_type": "nvidia-a100-80gb"},
    }
    plan = _plan_for(config)

    assert plan.options.merge_adapter is merges
