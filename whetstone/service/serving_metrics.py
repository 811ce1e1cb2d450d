"""How many requests a model server has answered, from its Prometheus metrics: vLLM's
`vllm:request_success_total`, or the local server's `whetstone_requests_total`. The
reconciler compares it between passes to know when a deployment last served a request."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

# Counter families (the parser drops `_total`) whose samples sum to the requests answered.
REQUEST_COUNTERS = frozenset({"vllm:request_success", "whetstone_requests"})


def requests_answered(metrics_text: str) -> int | None:
    """The requests the server has answered since it started; None when its metrics hold
    no request counter (or are not Prometheus text)."""
    try:
        families = list(text_string_to_metric_families(metrics_text))
    except ValueError:
        return None
    samples = [
        sample.value
        for family in families
        if family.name in REQUEST_COUNTERS
        for sample in family.samples
        if sample.name.endswith("_total")
    ]
    return int(sum(samples)) if samples else None
