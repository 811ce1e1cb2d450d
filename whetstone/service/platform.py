"""The ports a runtime provides to the services, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from whetstone.ports import BlobStore, Deployer, JobStore, LogStore, Orchestrator
from whetstone.settings import Settings


@dataclass
class Platform:
    jobs: JobStore
    logs: LogStore
    blobs: BlobStore
    orchestrator: Orchestrator
    settings: Settings
    deployer: Deployer | None = None  # None where the runtime serves no models yet
