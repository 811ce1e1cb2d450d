"""The runtime's platform with some ports swapped for test doubles."""

from __future__ import annotations

from typing import Any

import pytest

from whetstone import runtime
from whetstone.service.platform import Platform


def use_ports(monkeypatch: pytest.MonkeyPatch, **ports: Any) -> Platform:
    """From now on in this test, `get_platform()` is the configured runtime's platform with
    `ports` (e.g. orchestrator=..., deployer=...) in place of its own, also for the ports
    that call back into it; the stores are the same, so what a test stored before stays
    visible."""
    build = runtime.build_platform
    monkeypatch.setattr(
        runtime,
        "build_platform",
        lambda settings, **more: build(settings, **{**ports, **more}),
    )
    runtime.get_platform.cache_clear()
    return runtime.get_platform()
