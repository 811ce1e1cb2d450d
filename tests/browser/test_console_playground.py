"""The job page's playground in Chromium, the API played by routes: one message goes to the
fine-tuned model and to its base model; a base the deployment does not serve (a fully
fine-tuned job's) is refused with 409, and the base column shows the API's message."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser
BASE = "Qwen/Qwen2.5-0.5B-Instruct"
TUNED = "ft:Qwen/Qwen2.5-0.5B-Instruct:acme::ftjob-1"
REFUSAL = (
    f"the base model {BASE!r} is not served by a ready deployment: a deployed job "
    "fine-tuned from it with an adapter method answers for it (whet jobs deploy JOB)"
)
JOB = {
    "job_id": "ftjob-1",
    "name": None,
    "status": "completed",
    "created_at": "2026-12-01T00:00:00Z",
    "spec": {
        "base_model": BASE,
        "method": "full",
        "hardware": {"gpu_type": "nvidia-l4", "gpu_count": 1},
    },
    "dataset": {"source": "upload-1", "filename": "words.jsonl", "num_examples": 150},
    "cost": {
        "current_usd": 0.01,
        "estimated_total_usd": 0.01,
        "hourly_rate_usd": 0.8,
        "compute_hours": 0.01,
    },
    "estimate": {"estimated_hours": 0.01, "estimated_cost_usd": 0.01},
    "device": {"gpu_count": 1, "gpu_name": "NVIDIA L4"},
    "progress": {"step": 30, "max_steps": 30, "epoch": 1, "fraction": 1, "eta_seconds": None},
    "latest_metrics": {},
    "checkpoints": [],
    "error": None,
    "artifacts": None,
    "deployment": {"status": "ready", "model": "ftjob-1", "endpoint": None, "message": None},
}
EVALUATION = {
    "rows": [{"prompt": "Repeat w1", "expected": "w1 w1", "base": "w", "fine_tuned": "w1 w1"}],
    "base_note": None,
}


def fake_api(page: Any) -> list[dict[str, Any]]:
    """Routes answering the job, its OpenAI job object and chat completions: the fine-tuned
    model answers, its base is refused with 409 model_not_deployed. The chat requests seen."""
    asked: list[dict[str, Any]] = []

    def job(route: Any) -> None:
        path = urlsplit(route.request.url).path
        answers = {
            "/api/v1/fine-tuning/jobs/ftjob-1": JOB,
            "/api/v1/fine-tuning/jobs/ftjob-1/metrics": {"series": {}},
            "/api/v1/fine-tuning/jobs/ftjob-1/logs": {"logs": [], "next_token": None},
            "/api/v1/fine-tuning/jobs/ftjob-1/evaluation": EVALUATION,
            "/v1/fine_tuning/jobs/ftjob-1": {"model": BASE, "fine_tuned_model": TUNED},
        }
        route.fulfill(json=answers[path])

    def chat(route: Any) -> None:
        body = json.loads(route.request.post_data or "{}")
        asked.append(body)
        if body["model"] == TUNED:
            route.fulfill(json={"choices": [{"message": {"content": "w7 w7"}}]})
        else:
            refusal = {"message": REFUSAL, "code": "model_not_deployed", "type": "conflict"}
            route.fulfill(status=409, json={"error": refusal})

    page.route("**/ftjob-1**", job)
    page.route("**/v1/chat/completions", chat)
    return asked


def test_a_base_model_the_deployment_does_not_serve_shows_the_apis_reason_beside_the_answer(
    console_url: str, page: Any
) -> None:
    expect = playwright.expect
    # Given a fully fine-tuned job, deployed (its server serves no base model)
    asked = fake_api(page)
    page.goto(f"{console_url}/#/jobs/ftjob-1")

    # When one message is sent
    page.get_by_label("Message").fill("Repeat the word\nw7")
    page.get_by_role("button", name="Send").click()

    # Then the fine-tuned model's answer and, beside it, the base column names the base
    # model and shows why it did not answer
    tuned = page.get_by_role("region", name="Fine-tuned model")
    base = page.get_by_role("region", name="Base model", exact=True)
    expect(tuned.locator("#chat-text")).to_have_text("w7 w7")
    expect(tuned.locator("#chat-model")).to_have_text(TUNED)
    expect(base.locator("#base-refused")).to_have_text(REFUSAL)
    expect(base.locator("#base-model")).to_have_text(BASE)
    expect(page.locator("#chat-answer")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#base-answer")).to_have_attribute("aria-live", "polite")
    # and both were asked the same message
    assert sorted(body["model"] for body in asked) == sorted([TUNED, BASE])
    assert {json.dumps(body["messages"]) for body in asked} == {
        json.dumps([{"role": "user", "content": "Repeat the word\nw7"}])
    }
    # and the held-out prompts' base and fine-tuned answers stay below
    expect(page.locator("#comparison tbody tr")).to_have_count(1)
    # and it ran on the GPU the trainer reported
    expect(page.locator("#job-hardware")).to_have_text("1 × NVIDIA L4")
