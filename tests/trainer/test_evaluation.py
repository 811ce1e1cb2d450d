"""The evaluation step: both models' answers scored and stored, or skipped with a reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from whetstone.core.evaluation import EvaluationReport
from whetstone.core.events import TrainerPhase
from whetstone.core.layout import OutputNames


def _report(output: Path) -> EvaluationReport:
    return EvaluationReport.model_validate_json((output / OutputNames.EVALUATION).read_bytes())


@pytest.mark.parametrize("method", ["lora", "prompt_tuning", "full"])
def test_a_trained_model_and_its_base_are_scored_on_the_test_split(
    method: str, counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given a short run of the method on the counting task
    plan = counting_plan(method=method, evaluation={"max_samples": 3, "max_new_tokens": 6})
    # When it trains
    result, sink = run_job(plan, tmp_path / "work")
    # Then the job passed through evaluating and its report scores both models
    assert TrainerPhase.EVALUATING in [status.phase for status in sink.of("status")]
    report = _report(tmp_path / "out")
    assert report.status == "completed" and report.source == "test_split"
    assert report.samples == 3 and len(report.rows) == 3 and report.max_new_tokens == 6
    assert report.fine_tuned is not None and report.base is not None
    assert all(row.base is not None and row.expected for row in report.rows)
    assert report.rows[0].prompt.startswith("count from ")
    assert report.test_loss == pytest.approx(result.results["test_loss"])
    assert report.seconds > 0 and not report.time_capped
    # and the run manifest holds the same report
    manifest = json.loads((tmp_path / "out" / OutputNames.RUN_MANIFEST).read_text())
    assert EvaluationReport.model_validate(manifest["evaluation"]) == report


def test_disabled_evaluation_is_skipped_and_says_so(
    counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given a run with evaluation disabled
    plan = counting_plan(evaluation={"enabled": False})
    # When it trains
    result, _ = run_job(plan, tmp_path / "work")
    # Then its report says why nothing was scored, and keeps the test loss
    report = _report(tmp_path / "out")
    assert report.status == "skipped" and report.reason == "evaluation.enabled is false"
    assert report.fine_tuned is None and report.rows == []
    assert report.test_loss == pytest.approx(result.results["test_loss"])


def test_a_prompts_file_is_scored_instead_of_the_test_split(
    counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given a file of prompts with expected answers
    prompts = tmp_path / "prompts.jsonl"
    rows = [
        {"prompt": "count from 7", "expected": "7 8 9 10 11 12"},
        {"prompt": "hi", "expected": "x"},
    ]
    prompts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    plan = counting_plan(evaluation={"prompts_source": str(prompts), "max_new_tokens": 4})
    # When the job trains
    run_job(plan, tmp_path / "work")
    # Then those prompts were answered and scored
    report = _report(tmp_path / "out")
    assert report.source == "prompts_source" and report.samples == 2
    assert [row.prompt for row in report.rows] == ["count from 7", "hi"]


def test_an_evaluation_that_fails_leaves_the_run_done_with_a_skipped_report(
    counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given a prompts file that does not exist
    plan = counting_plan(evaluation={"prompts_source": str(tmp_path / "missing.jsonl")})
    # When the job trains
    result, sink = run_job(plan, tmp_path / "work")
    # Then the run is done, and the report and a warning say what went wrong
    assert result.outcome == "done"
    report = _report(tmp_path / "out")
    assert report.status == "skipped" and "prompts_source" in (report.reason or "")
    warnings = [log.message for log in sink.of("log") if log.level == "warning"]
    assert any(message.startswith("evaluation failed") for message in warnings)


def test_a_preference_pair_is_scored_against_its_preferred_answer() -> None:
    from trainer.evaluate import case_of

    from whetstone.core.datasets.records import Example, ExampleKind, Turn

    pair = Example(
        kind=ExampleKind.PREFERENCE,
        messages=[Turn(role="user", content="2+2?")],
        chosen="4",
        rejected="5",
    )

    case = case_of(pair)

    assert case is not None and case.expected == "4"
    assert case.messages == [{"role": "user", "content": "2+2?"}]
