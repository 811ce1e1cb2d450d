"""The SDK and the CLI stand on the wire models alone: no server code under them."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import get_args

from whetstone.api.schemas.transfers import ArtifactName
from whetstone.service.artifacts import ArtifactKind

ROOT = Path(__file__).resolve().parents[2]
SDK = sorted((ROOT / "whetstone").glob("client*.py"))
CLI_COMMANDS = sorted((ROOT / "whetstone" / "cli" / "commands").glob("*.py"))
WIRE = sorted((ROOT / "whetstone" / "api" / "schemas").glob("*.py"))

_PROBE = """
import json, sys
import whetstone.client
print(json.dumps(sorted(sys.modules)))
"""


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_sdk_the_cli_commands_and_the_wire_models_import_nothing_from_the_service() -> None:
    offenders = {
        path.relative_to(ROOT).as_posix(): sorted(
            m for m in imported_modules(path) if m.startswith("whetstone.service")
        )
        for path in [*SDK, *CLI_COMMANDS, *WIRE]
    }

    assert SDK and CLI_COMMANDS and WIRE
    assert {path: found for path, found in offenders.items() if found} == {}


def test_importing_the_sdk_loads_no_service_module_and_no_server_package() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    loaded = json.loads(out)

    server = ("whetstone.service", "whetstone.adapters", "aws_lambda_powertools", "boto3")
    assert [m for m in loaded if m.startswith(server)] == []


def test_the_wire_artifact_names_are_the_services_artifact_kinds() -> None:
    assert set(get_args(ArtifactName)) == {kind.value for kind in ArtifactKind}
