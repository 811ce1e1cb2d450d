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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
