"""A job's hourly rate is chosen in one place, whether or not the job has an estimate yet."""

from __future__ import annotations

import dataclasses

import pytest

from whetstone.core.catalog.base_models import get_base_model
from whetstone.core.spec import JobSpec
from whetstone.runtime import get_platform
from whetstone.service.jobs import estimate_job, hourly_rate, runtime_rate
from whetstone.service.platform import Platform
from whetstone.settings import Settings

SPEC = JobSpec(base_model="llama-3.1-8b-instruct", method="lora")


def platform_with(settings: Settings) -> Platform:
    return dataclasses.replace(get_platform(), settings=settings)


def test_given_the_local_runtime_priced_when_rated_then_every_job_pays_its_own_rate() -> None:
    platform = platform_with(Settings(runtime="local", local_hourly_rate_usd=2.5))

    estimate = estimate_job(platform, get_base_model(SPEC.base_model), SPEC, 100, None)

    assert runtime_rate(platform) == 2.5
    assert hourly_rate(platform, SPEC) == 2.5
    assert estimate.hourly_rate_usd == 2.5


def test_given_the_aws_runtime_when_rated_then_a_job_pays_its_node_with_or_without_estimate() -> (
    None
):
    platform = platform_with(Settings(runtime="aws", local_hourly_rate_usd=2.5))

    estimate = estimate_job(platform, get_base_model(SPEC.base_model), SPEC, 100, None)

    assert runtime_rate(platform) is None
    assert hourly_rate(platform, SPEC) == pytest.approx(estimate.hourly_rate_usd)
    assert estimate.hourly_rate_usd == estimate.node_hourly_rate_usd
