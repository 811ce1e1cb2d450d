"""The metric names a job records, so a typo'd name is refused rather than answered empty."""

from __future__ import annotations

import re
from collections.abc import Iterable
from difflib import get_close_matches

from whetstone.core.errors import InvalidInputError

# The MetricsDetail fields a job records as series (ingest stores them by these names).
METRIC_FIELDS = (
    "loss",
    "eval_loss",
    "learning_rate",
    "grad_norm",
    "samples_per_second",
    "tokens_per_second",
    "useful_tokens_per_second",
    "padding_waste_pct",
    "mfu",
    "epoch",
    "rewards_chosen",
    "rewards_rejected",
    "reward_margin",
    "reward_accuracy",
)
RESOURCE_METRICS = ("cpu_pct", "ram_used_mb", "process_rss_mb")
_GPU_METRIC = re.compile(r"^gpu\d+_(util_pct|memory_used_mb|temperature_c)$")
GPU_METRICS = ("gpu<N>_util_pct", "gpu<N>_memory_used_mb", "gpu<N>_temperature_c")
KNOWN_METRICS = (*METRIC_FIELDS, *RESOURCE_METRICS)


def require_known_metrics(names: Iterable[str]) -> None:
    """Refuse (422 `unknown_metric`) a name no job records, naming the close and known ones."""
    for name in names:
        if name in KNOWN_METRICS or _GPU_METRIC.match(name):
            continue
        close = get_close_matches(name, KNOWN_METRICS, n=2, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise InvalidInputError(
            f"unknown metric {name!r}; {hint}known metrics: "
            + ", ".join((*KNOWN_METRICS, *GPU_METRICS)),
            code="unknown_metric",
        )
