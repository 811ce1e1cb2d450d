"""`whet jobs metrics ID`: a job's metric series as a table, JSON or a PNG plot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from whetstone.cli.commands.common import EXIT_OK, EXIT_USAGE, connect, emit
from whetstone.cli.output import table
from whetstone.core.job import MetricPoint

PLOTTED_SERIES = ("loss", "eval_loss", "learning_rate")


def _metrics_table(series: dict[str, list[MetricPoint]]) -> str:
    first = {name: index for index, name in enumerate(PLOTTED_SERIES)}
    names = sorted(series, key=lambda n: (first.get(n, len(first)), n))
    by_step: dict[int, dict[str, float]] = {}
    for name, points in series.items():
        for point in points:
            by_step.setdefault(point.step, {})[name] = point.value
    rows = [[step, *(values.get(n) for n in names)] for step, values in sorted(by_step.items())]
    return table(["STEP", *(n.upper() for n in names)], rows)


def plot_losses(series: dict[str, list[MetricPoint]], path: Path, title: str) -> None:
    """Train and validation loss against step, the learning rate on a second axis, as a PNG."""
    from matplotlib.figure import Figure  # lazily: an optional dependency, Agg canvas

    figure = Figure(figsize=(9, 5), layout="constrained")
    loss_axis = figure.subplots()
    for name, label, style in (("loss", "train loss", "-"), ("eval_loss", "validation loss", "o-")):
        points = series.get(name, [])
        if points:
            loss_axis.plot([p.step for p in points], [p.value for p in points], style, label=label)
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("loss")
    handles, labels = loss_axis.get_legend_handles_labels()
    rates = series.get("learning_rate", [])
    if rates:
        rate_axis = loss_axis.twinx()
        rate_axis.plot(
            [p.step for p in rates],
            [p.value for p in rates],
            "--",
            color="gray",
            label="learning rate",
        )
        rate_axis.set_ylabel("learning rate")
        rate_handles, rate_labels = rate_axis.get_legend_handles_labels()
        handles, labels = handles + rate_handles, labels + rate_labels
    if handles:
        loss_axis.legend(handles, labels, loc="upper right")
    loss_axis.set_title(title)
    figure.savefig(path, format="png", dpi=100)


def show_metrics(args: argparse.Namespace) -> int:
    """`whet jobs metrics ID`: the series as a table (or JSON), optionally plotted."""
    names = [n for n in args.names.split(",") if n] if args.names else None
    series = connect(args).metrics(
        args.job_id,
        names=names,
        min_step=args.min_step,
        max_step=args.max_step,
        max_points=args.max_points,
    )
    if args.plot:
        try:
            plot_losses(series, Path(args.plot), args.job_id)
        except ImportError:
            print("whet: --plot needs matplotlib: pip install 'whetstone[cli]'", file=sys.stderr)
            return EXIT_USAGE
        print(f"wrote {args.plot}", file=sys.stderr)
    emit(args, {"series": series}, lambda: _metrics_table(series))
    return EXIT_OK
