"""The ports a runtime provides to the services, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from whetstone.ports import (
    ApiKeyStore,
    BlobStore,
    Deployer,
    JobStore,
    LogStore,
    Orchestrator,
    RequestThrottle,
)
from whetstone.settings import Settings


@dataclass(frozen=True)
class Platform:
    jobs: JobStore
    logs: LogStore
    blobs: BlobStore
    orchestrator: Orchestrator
    settings: Settings
    deployer: Deployer | None = None  # every runtime has one; tests of the stores need none
    api_keys: ApiKeyStore | None = None  # aws only: local callers use `whet token`
    throttle: RequestThrottle | None = None  # aws only: per-organization request limits


class PlatformRef:
    """The platform, for a port built before it that calls back into it (the local runner,
    the trainer events, the golden answer a deployment checks): bound once, by the factory
    that builds both."""

    def __init__(self) -> None:
        self._platform: Platform | None = None

    def bind(self, platform: Platform) -> None:
        """Set the platform; a second bind is a wiring bug and raises."""
        if self._platform is not None:
            raise RuntimeError("the platform is already bound")
        self._platform = platform

    def get(self) -> Platform:
        """The bound platform; before the bind, a wiring bug that raises."""
        if self._platform is None:
            raise RuntimeError("the platform is used before it is built")
        return self._platform
