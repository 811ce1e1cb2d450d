"""cdk-nag (AwsSolutions) and cfn-lint over the synthesized templates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def test_awssolutions_has_no_unacknowledged_finding(synthesized: Any) -> None:
    (nag,) = synthesized.report["pluginReports"]
    assert nag["pluginName"] == "AwsSolutions"
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []


def test_every_acknowledgment_has_a_written_reason(synthesized: Any) -> None:
    (nag,) = synthesized.report["pluginReports"]
    for acknowledged in nag["suppressedViolations"]:
        assert len(acknowledged["reason"]) >= 40, acknowledged["acknowledgedId"]


def test_cfn_lint_finds_no_error(synthesized: Any) -> None:
    templates = [
        str(synthesized.outdir / f"{stack}.template.json") for stack in synthesized.templates
    ]
    # W3005 (CDK's DependsOn on a role's policy beside the GetAtt) is the only warning seen.
    linted = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--non-zero-exit-code",
            "error",
            "--",
            *templates,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
