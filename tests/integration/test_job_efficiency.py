"""A job's efficiency metrics, from the trainer's events to its API object and `whet jobs get`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support.clients import Result, start_training, write_dataset

from whetstone.core.events import MetricsDetail, make_event
from whetstone.runtime import get_platform
from whetstone.service.ingest import ingest_event

pytestmark = pytest.mark.usefixtures("no_user_config")

EFFICIENCY = {"useful_tokens_per_second": 1568.4, "padding_waste_pct": 4.6, "mfu": 0.12}


@pytest.fixture
def training_job(whet: Callable[..., Result], tmp_path: Path) -> str:
    config = tmp_path / "job.yaml"
    config.write_text("base_model: qwen2.5-0.5b-instruct\nmethod: lora\n")
    dataset = write_dataset(tmp_path / "train.jsonl")
    created = whet("jobs", "create", str(config), str(dataset), "--json")
    assert created.code == 0, created.err
    job_id = str(created.json()["job_id"])
    start_training(job_id)
    return job_id


def _report(job_id: str, detail: MetricsDetail) -> None:
    ingest_event(get_platform(), make_event(job_id, detail))


def test_a_jobs_efficiency_is_on_its_summary_and_its_series(
    whet: Callable[..., Result], training_job: str
) -> None:
    # Given a training step reported with its efficiency, then an evaluation without it
    _report(
        training_job,
        MetricsDetail(step=5, max_steps=10, epoch=0.5, progress=0.5, loss=1.0, **EFFICIENCY),
    )
    _report(
        training_job, MetricsDetail(step=5, max_steps=10, epoch=0.5, progress=0.5, eval_loss=1.1)
    )
    # When the job is read, as JSON, as text and as metric series
    raw = whet("jobs", "get", training_job, "--json").json()
    shown = whet("jobs", "get", training_job).out
    series = whet(
        "jobs", "metrics", training_job, "--names", "mfu,padding_waste_pct", "--json"
    ).json()["series"]
    # Then the API object keeps the latest efficiency of the training steps
    assert {name: raw["latest_metrics"][name] for name in EFFICIENCY} == EFFICIENCY
    # and the summary says it in words, and the series hold each figure by step
    line = next(line for line in shown.splitlines() if line.startswith("efficiency:"))
    assert line.split(":", 1)[1].strip() == "1,568 useful tok/s, 4.6% padding, MFU 12.0%"
    assert [(p["step"], p["value"]) for p in series["mfu"]] == [(5, 0.12)]
