"""`whet jobs evaluation ID`: a job's evaluation report, base model beside fine-tuned."""

from __future__ import annotations

import argparse

from whetstone.api.schemas.evaluation import EvaluationResponse
from whetstone.cli.commands.common import EXIT_OK, connect, emit
from whetstone.cli.output import fields, table
from whetstone.core.evaluation import EvaluationScores

CELL_CHARS = 40  # a sample row's cells are cut to this; --json shows them whole


def _short(text: str | None) -> str | None:
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= CELL_CHARS else flat[: CELL_CHARS - 1] + "…"


def _score(scores: EvaluationScores | None, name: str) -> str | None:
    return None if scores is None else f"{getattr(scores, name):.1%}"


def describe_evaluation(report: EvaluationResponse) -> str:
    """The report as text: its facts, the scores side by side, then the sample rows."""
    if report.status == "skipped":
        return fields(
            [
                ("job", report.job_id),
                ("evaluation", f"skipped: {report.reason}"),
                ("test loss", report.test_loss),
                ("test perplexity", report.test_perplexity),
            ]
        )
    facts = fields(
        [
            ("job", report.job_id),
            ("prompts", f"{report.samples} from the {report.source}"),
            ("test loss", report.test_loss),
            ("test perplexity", report.test_perplexity),
            ("time", f"{report.seconds:.1f} s (cap {report.time_cap_s:.0f} s)"),
            ("stopped by the time cap", report.time_capped),
            *([("base model", report.base_note)] if report.base_note else []),
        ]
    )
    scores = table(
        ["SCORE", "BASE", "FINE-TUNED"],
        [
            [label, _score(report.base, name), _score(report.fine_tuned, name)]
            for label, name in (("exact match", "exact_match"), ("ROUGE-L", "rouge_l"))
        ],
    )
    rows = table(
        ["PROMPT", "EXPECTED", "BASE", "FINE-TUNED"],
        [
            [_short(row.prompt), _short(row.expected), _short(row.base), _short(row.fine_tuned)]
            for row in report.rows
        ],
    )
    return f"{facts}\n\n{scores}\n\n{rows}"


def show_evaluation(args: argparse.Namespace) -> int:
    """Print a job's evaluation report (JSON with --json)."""
    report = connect(args).evaluation(args.job_id)
    emit(args, report, lambda: describe_evaluation(report))
    return EXIT_OK
