"""One factory per runtime: a frozen platform built in one pass, or a clear refusal."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from whetstone.adapters.local.runner import LocalRunner
from whetstone.runtime import MissingSettingError, build_aws_platform, build_platform
from whetstone.service.platform import PlatformRef
from whetstone.settings import Settings


def test_given_the_aws_runtime_without_a_state_machine_when_built_then_it_names_the_variable() -> (
    None
):
    settings = Settings(runtime="aws", state_machine_arn=None)

    with pytest.raises(MissingSettingError, match="WHETSTONE_STATE_MACHINE_ARN is not set"):
        build_platform(settings)
    with pytest.raises(MissingSettingError) as refused:
        build_aws_platform(settings)
    assert refused.value.variable == "WHETSTONE_STATE_MACHINE_ARN"


def test_given_the_local_runtime_when_built_then_every_port_is_there_and_none_can_change(
    tmp_path: Path,
) -> None:
    platform = build_platform(Settings(runtime="local", home=tmp_path))

    assert isinstance(platform.orchestrator, LocalRunner)
    assert platform.deployer is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        platform.orchestrator = LocalRunner  # type: ignore[misc]


def test_given_a_platform_ref_when_used_before_or_bound_again_then_it_refuses(
    tmp_path: Path,
) -> None:
    ref = PlatformRef()
    platform = build_platform(Settings(runtime="local", home=tmp_path))

    with pytest.raises(RuntimeError, match="before it is built"):
        ref.get()
    ref.bind(platform)
    with pytest.raises(RuntimeError, match="already bound"):
        ref.bind(platform)
    assert ref.get() is platform
