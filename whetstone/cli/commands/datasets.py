"""`whet validate`: check a dataset before paying for a GPU."""

from __future__ import annotations

import argparse
from typing import Any

from whetstone.api.schemas.datasets import DatasetValidationResponse
from whetstone.cli.commands.common import EXIT_OK, EXIT_REFUSED, api_options, connect, emit
from whetstone.cli.output import fields, table
from whetstone.core.datasets.report import Issue
from whetstone.core.spec import ColumnMapping, DatasetFormat

MAX_LISTED_ISSUES = 20


def _issues(title: str, issues: list[Issue]) -> str:
    rows = [
        [issue.code, issue.line or issue.row, issue.message] for issue in issues[:MAX_LISTED_ISSUES]
    ]
    more = len(issues) - MAX_LISTED_ISSUES
    return (
        f"\n{title}:\n"
        + table(["CODE", "LINE/ROW", "MESSAGE"], rows)
        + (f"\n... and {more} more" if more > 0 else "")
    )


def _columns(applied: ColumnMapping | None) -> str:
    """The mapping the report applied, as `role=column` pairs (`-` for conversations)."""
    if applied is None:
        return "-"
    return ", ".join(
        f"{role}={name}" for role, name in applied.model_dump(exclude_none=True).items()
    )


def _human(report: DatasetValidationResponse) -> str:
    text = fields(
        [
            ("valid", report.valid),
            ("format", report.format),
            ("kind", report.kind),
            ("columns", _columns(report.columns_applied)),
            ("examples", report.num_examples),
            ("records read", report.stats.records_read),
            ("errors", sum(report.stats.error_counts.values()) or len(report.errors)),
            ("warnings", sum(report.stats.warning_counts.values()) or len(report.warnings)),
        ]
    )
    if report.errors:
        text += "\n" + _issues("errors", report.errors)
    if report.warnings:
        text += "\n" + _issues("warnings", report.warnings)
    return text


def _validate(args: argparse.Namespace) -> int:
    columns = {
        name: value
        for name in ("text", "label", "prompt", "completion")
        if (value := getattr(args, f"{name}_column")) is not None
    }
    report = connect(args).validate_dataset(
        args.path,
        source=args.source,
        format=args.format,
        cutoff_length=args.cutoff_length,
        max_samples=args.max_samples,
        columns=columns,
    )
    emit(args, report, lambda: _human(report))
    return EXIT_OK if report.valid else EXIT_REFUSED


def register(commands: Any) -> None:
    """Add `validate` to the `whet` subcommands."""
    validate = commands.add_parser(
        "validate",
        parents=[api_options()],
        help="validate a dataset file or source (exit 1 when it has errors)",
    )
    where = validate.add_mutually_exclusive_group(required=True)
    where.add_argument("path", nargs="?", help="a local dataset file (JSONL, CSV, Parquet)")
    where.add_argument("--source", help="instead of a file: s3://bucket/key or hf://<dataset>")
    validate.add_argument("--format", choices=[f.value for f in DatasetFormat])
    validate.add_argument("--cutoff-length", type=int, help="tokens past which an example is cut")
    validate.add_argument("--max-samples", type=int, help="check only the first N examples")
    for name in ("text", "label", "prompt", "completion"):
        validate.add_argument(f"--{name}-column", help=f"column holding the {name}")
    validate.set_defaults(run=_validate)
