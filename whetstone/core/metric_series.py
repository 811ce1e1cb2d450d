"""Metric series as the API answers them: downsampled to a number of points per series."""

from __future__ import annotations

from whetstone.core.job import MetricPoint

# The points of each series a metrics request answers when it names no max_points.
DEFAULT_MAX_POINTS = 500


def downsample(points: list[MetricPoint], max_points: int) -> list[MetricPoint]:
    """At most `max_points` per series: the mean of equal step buckets, keeping the last step."""
    if len(points) <= max_points:
        return points
    bucket = -(-len(points) // max_points)
    sampled = []
    for start in range(0, len(points), bucket):
        chunk = points[start : start + bucket]
        mean = sum(p.value for p in chunk) / len(chunk)
        sampled.append(chunk[-1].model_copy(update={"value": mean}))
    return sampled


def merge_pages(
    pages: list[dict[str, list[MetricPoint]]], max_points: int
) -> dict[str, list[MetricPoint]]:
    """The series of consecutive pages (each over later steps than the last) as one,
    downsampled again to `max_points`."""
    merged: dict[str, list[MetricPoint]] = {}
    for page in pages:
        for name, points in page.items():
            merged.setdefault(name, []).extend(points)
    return {name: downsample(points, max_points) for name, points in sorted(merged.items())}
