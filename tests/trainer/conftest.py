"""Shared fixtures: a tiny model built on the spot, synthetic splits, plans, an event sink."""

from __future__ import annotations

import io
import os
import random
from functools import partial
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

# Offline and sandboxed before any Hugging Face import reads them.
_SCRATCH = Path(os.environ.get("PYTEST_TRAINER_SCRATCH", "/tmp/whetstone-trainer-tests"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HOME", str(_SCRATCH / "hf-home"))
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(_SCRATCH / "inductor"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from support.tiny_run import short_lora_spec, write_chat_splits  # noqa: E402

from whetstone.core.events import TrainerEvent  # noqa: E402
from whetstone.core.plan import TrainerPlan  # noqa: E402


def _counting_example(start: int) -> dict[str, Any]:
    """A chat example of a task a tiny model learns quickly: count on from a number."""
    answer = " ".join(str(start + i) for i in range(6))
    return {
        "kind": "chat",
        "messages": [
            {"role": "user", "content": f"count from {start}"},
            {"role": "assistant", "content": answer},
        ],
    }


_write_splits = partial(write_chat_splits, seed=42)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from whetstone.inference.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), hidden=64, layers=2)


@pytest.fixture(scope="session")
def counting_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(0)
    starts = list(range(300))
    rng.shuffle(starts)
    return _write_splits(
        tmp_path_factory.mktemp("counting-data"),
        {
            "train": [_counting_example(s) for s in starts[:200]],
            "validation": [_counting_example(s) for s in starts[200:232]],
            "test": [_counting_example(s) for s in starts[232:248]],
        },
    )


def _make_plan(
    model_dir: Path, data_dir: Path, output: Path, job_id: str = "job-test", **spec: Any
) -> TrainerPlan:
    """A small plan: defaults sized for a CPU test, overridable per section."""
    sections = short_lora_spec(model_dir)
    # The evaluation step kept short: a few answers of a few tokens.
    sections["evaluation"] = {"max_samples": 4, "max_new_tokens": 8}
    options = spec.pop("options", {})
    for key, value in spec.items():
        if isinstance(value, dict) and isinstance(sections.get(key), dict):
            sections[key] = {**sections[key], **value}
        else:
            sections[key] = value
    return TrainerPlan.model_validate(
        {
            "job_id": job_id,
            "spec": sections,
            "data": str(data_dir),
            "output": str(output),
            "options": {"max_steps": 3, **options},
        }
    )


class CollectingSink:
    """Keeps events in memory, serialised and parsed back as the ingest service would."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.events: list[TrainerEvent] = []

    def send(self, event: TrainerEvent) -> None:
        line = event.model_dump_json()
        self.stream.write(line + "\n")
        self.events.append(TrainerEvent.model_validate_json(line))

    def close(self) -> None:
        return None

    def of(self, detail_type: str) -> list[Any]:
        return [e.detail for e in self.events if e.detail_type == detail_type]


def _run_job(plan: TrainerPlan, workdir: Path, stop: Any = None) -> tuple[Any, CollectingSink]:
    """Run the real recipe in this process; returns its result and the events it sent."""
    from trainer.checkpoints import StopRequest
    from trainer.events import EventEmitter
    from trainer.recipe import run_plan

    sink = CollectingSink()
    result = run_plan(
        plan,
        emitter=EventEmitter(plan.job_id, sink),
        workdir=workdir,
        stop=stop or StopRequest(),
    )
    return result, sink


@pytest.fixture
def make_plan() -> Any:
    return _make_plan


@pytest.fixture
def counting_plan(tiny_model_dir: Path, counting_data: Path, tmp_path: Path) -> Any:
    """make_plan for the tiny model on the counting data, writing to `output` (tmp_path/out)."""

    def plan(output: Path | None = None, **spec: Any) -> TrainerPlan:
        return _make_plan(tiny_model_dir, counting_data, output or tmp_path / "out", **spec)

    return plan


@pytest.fixture
def run_job() -> Any:
    return _run_job
