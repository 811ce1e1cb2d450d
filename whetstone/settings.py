"""Configuration from the environment, parsed once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting Whetstone reads from the environment (prefix `WHETSTONE_`)."""

    model_config = SettingsConfigDict(env_prefix="WHETSTONE_", extra="ignore")

    runtime: Annotated[
        Literal["local", "aws"], Field(description="Which adapters back the services.")
    ] = "local"
    home: Annotated[Path, Field(description="Where the local runtime keeps its state.")] = Path(
        "~/.whetstone"
    ).expanduser()
    dataset_roots: Annotated[
        list[Path],
        Field(
            description="Folders local dataset paths may point into (local runtime), as a JSON "
            "list; empty means <home>/datasets only.",
        ),
    ] = Field(default_factory=list)
    max_upload_bytes: Annotated[
        int, Field(ge=1, description="Largest dataset file accepted, in bytes.")
    ] = 5 * 1024**3
    max_row_bytes: Annotated[
        int, Field(ge=1, description="Largest dataset line or row accepted, in bytes.")
    ] = 1024**2
    table_name: Annotated[str, Field(description="DynamoDB table of jobs (aws).")] = "whetstone"
    bucket: Annotated[str, Field(description="S3 bucket of datasets and artifacts (aws).")] = (
        "whetstone-artifacts"
    )
    log_group: Annotated[str, Field(description="CloudWatch log group of jobs (aws).")] = (
        "/whetstone/jobs"
    )
    max_active_jobs: Annotated[
        int, Field(ge=1, description="Jobs an organization may have running at once.")
    ] = 10
    max_active_gpus: Annotated[
        int, Field(ge=1, description="GPUs an organization's running jobs may hold.")
    ] = 16


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
