"""Fixtures of the aws runtime under moto, for any test that names them (a plugin of
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.aws_workflow import aws_workflow
from support.kube import FakeKube
from whetstone.service.platform import Platform


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
def aws_platform(monkeypatch: pytest.MonkeyPatch, kube: FakeKube) -> Iterator[Platform]:
    """The aws runtime's platform on moto; its orchestrator records what it is asked to start."""
    with aws_workflow(monkeypatch, kube) as platform:
        yield platform
