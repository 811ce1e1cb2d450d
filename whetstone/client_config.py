"""Local inputs of the SDK: where the API is, with which token, and job config files."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from whetstone.api.schemas.jobs import split_job_config
from whetstone.client_errors import WhetstoneConfigError

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_CONFIG_PATH = Path("~/.config/whetstone/config.json")

JobConfig = Mapping[str, Any] | str | os.PathLike[str]


@dataclass(frozen=True)
class Connection:
    """Where the API is and how to authenticate, once resolved."""

    base_url: str
    token: str | None


def config_path() -> Path:
    return Path(os.environ.get("WHETSTONE_CONFIG") or DEFAULT_CONFIG_PATH).expanduser()


def _config_file() -> dict[str, Any]:
    path = config_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise WhetstoneConfigError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise WhetstoneConfigError(f"{path} must hold a JSON object with 'url' and 'token'")
    return data


def resolve_connection(base_url: str | None = None, token: str | None = None) -> Connection:
    """Arguments first, then WHETSTONE_URL / WHETSTONE_TOKEN, then the config file."""
    file = _config_file()
    url = base_url or os.environ.get("WHETSTONE_URL") or file.get("url") or DEFAULT_URL
    token = token or os.environ.get("WHETSTONE_TOKEN") or file.get("token") or None
    return Connection(base_url=str(url).rstrip("/"), token=token)


def load_job_config(config: JobConfig) -> tuple[str | None, dict[str, Any]]:
    """(name, spec) of a job config: a mapping, or a YAML/JSON file holding a job spec or
    {name, spec}."""
    if isinstance(config, Mapping):
        data: Any = dict(config)
    else:
        path = Path(config)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise WhetstoneConfigError(f"cannot read the job config {path}: {error}") from error
        try:
            data = yaml.safe_load(text)  # YAML is a superset of JSON
        except yaml.YAMLError as error:
            raise WhetstoneConfigError(f"{path} is neither YAML nor JSON: {error}") from error
    if not isinstance(data, dict):
        raise WhetstoneConfigError("a job config is a mapping: a job spec, or {name, spec}")
    name, spec = split_job_config(data)
    if not isinstance(spec, dict):
        raise WhetstoneConfigError("the job config's 'spec' must be a mapping")
    return (str(name) if name is not None else None), dict(spec)


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise WhetstoneConfigError(f"cannot read {path}: {error}") from error
