"""GET /jobs/{id}/evaluation: the report the trainer stored, through the handler on the local
stores and on the aws stores (S3 on moto), and through the SDK and `whet jobs evaluation`
over real HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support.apigw import call_api
from support.aws_workflow import CALLER, new_job
from support.clients import Result
from support.jobs import make_job

from whetstone.cli.tokens import DEFAULT_CALLER
from whetstone.client import WhetstoneAPIError, WhetstoneClient
from whetstone.core.evaluation import EvaluationReport, EvaluationRow, EvaluationScores
from whetstone.core.job import Caller, JobRecord
from whetstone.core.layout import JobLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.runtime import get_platform
from whetstone.service.platform import Platform

API = "/api/v1/fine-tuning"
REPORT = EvaluationReport(
    status="completed",
    source="test_split",
    samples=2,
    max_new_tokens=16,
    fine_tuned=EvaluationScores(exact_match=1.0, rouge_l=1.0),
    base=EvaluationScores(exact_match=0.0, rouge_l=0.25),
    test_loss=0.5,
    test_perplexity=1.6487,
    rows=[
        EvaluationRow(prompt="count from 3", expected="3 4 5", base="hello", fine_tuned="3 4 5"),
        EvaluationRow(prompt="count from 8", expected="8 9 10", base="8", fine_tuned="8 9 10"),
    ],
    seconds=1.5,
)


def stored_job(platform: Platform, report: EvaluationReport | None = REPORT) -> JobRecord:
    """A local user's job in training, its evaluation report stored when one is given."""
    job = make_job(DEFAULT_CALLER.org_id, status=JobStatus.TRAINING)
    platform.jobs.create(job)
    if report is not None:
        platform.blobs.put(JobLayout.of(job).evaluation, report.model_dump_json().encode())
    return job


@pytest.fixture
def evaluated(orchestrator: object) -> str:
    return stored_job(get_platform()).job_id


def test_given_a_stored_report_then_the_route_returns_it_for_the_job(evaluated: str) -> None:
    response = call_api("GET", f"{API}/jobs/{evaluated}/evaluation")

    assert response.status == 200, response.body
    assert response.body["job_id"] == evaluated
    assert (
        EvaluationReport.model_validate({k: v for k, v in response.body.items() if k != "job_id"})
        == REPORT
    )


def test_given_no_report_yet_then_404_says_it_comes_after_training(orchestrator: object) -> None:
    job = stored_job(get_platform(), report=None)

    response = call_api("GET", f"{API}/jobs/{job.job_id}/evaluation")

    assert response.status == 404
    assert response.body["code"] == "evaluation_not_found"
    assert "it is training; the report is written after training" in (response.body["message"])


def test_given_another_organizations_job_then_its_report_is_not_found(evaluated: str) -> None:
    other = Caller(user_id="mallory", org_id="other-org")

    response = call_api("GET", f"{API}/jobs/{evaluated}/evaluation", caller=other)

    assert response.status == 404 and response.body["code"] == "job_not_found"


def test_on_aws_the_report_is_read_from_s3(aws_platform: Platform) -> None:
    job = new_job(aws_platform)
    aws_platform.blobs.put(JobLayout.of(job).evaluation, REPORT.model_dump_json().encode())

    response = call_api("GET", f"{API}/jobs/{job.job_id}/evaluation", caller=CALLER)

    assert response.status == 200, response.body
    assert response.body["fine_tuned"] == {"exact_match": 1.0, "rouge_l": 1.0}


@pytest.mark.usefixtures("no_user_config")
def test_sdk_returns_the_report_and_raises_before_one_exists(
    client: WhetstoneClient, evaluated: str
) -> None:
    report = client.evaluation(evaluated)
    pending = stored_job(get_platform(), report=None)

    assert report.job_id == evaluated and report.base == REPORT.base
    with pytest.raises(WhetstoneAPIError) as missing:
        client.evaluation(pending.job_id)
    assert missing.value.status == 404 and missing.value.code == "evaluation_not_found"


def test_cli_prints_base_and_fine_tuned_scores_and_the_sample_rows(
    whet: Callable[..., Result], evaluated: str
) -> None:
    shown = whet("jobs", "evaluation", evaluated)
    as_json = whet("jobs", "evaluation", evaluated, "--json")

    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert any(line.split() == ["exact", "match", "0.0%", "100.0%"] for line in lines)
    assert any(line.split() == ["ROUGE-L", "25.0%", "100.0%"] for line in lines)
    assert any(line.startswith("count from 3") and "hello" in line for line in lines)
    assert as_json.json()["rows"][1]["fine_tuned"] == "8 9 10"
