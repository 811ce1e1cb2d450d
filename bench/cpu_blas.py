"""fp32 matrix products on oneMKL's generic branch against its dispatch by CPU features.

    .venv/bin/python bench/cpu_blas.py [--rounds 3] [--threads 1]

Runs the same products in fresh processes, alternately: one started as off-the-shelf torch
starts, one started as the trainer's train stage starts on an AMD CPU (`trainer/cpu_blas.py`:
oneMKL's vendor check lifted). Shapes: a square product, the throughput bench's base
projections over a batch of 2,787 tokens, and its rank-16 adapter's two skinny products.
Prints GFLOP/s per shape (the best of each process's repeats, the median over rounds) and
the ratio. On a CPU where the dispatch does not apply (Intel's, ARM, no C compiler) it says
so and measures the stock branch only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SHAPES = [
    (2048, 2048, 2048),
    (2787, 384, 1024),
    (2787, 1024, 384),
    (2787, 1024, 16),
    (2787, 16, 1024),
]
REPEATS = 8


def measure(threads: int) -> dict[str, float]:
    """GFLOP/s of each (m, k, n) product in this process: the best of REPEATS."""
    import torch

    torch.set_num_threads(threads)
    rates = {}
    for m, k, n in SHAPES:
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b  # warm-up
        best = float("inf")
        for _ in range(REPEATS):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
        rates[f"{m}x{k}x{n}"] = 2 * m * k * n / best / 1e9
    return rates


def _run(env: dict[str, str], threads: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", "--threads", str(threads)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.threads)))
        return

    from trainer.cpu_blas import dispatch_environment

    stock = dict(os.environ)
    dispatched = dispatch_environment(stock)
    if dispatched is None:
        print("the dispatch does not apply here (not an AMD CPU, opted out, or no C compiler)")
    runs: dict[str, list[dict[str, float]]] = {"stock": [], "dispatched": []}
    for _ in range(args.rounds):
        runs["stock"].append(_run(stock, args.threads))
        if dispatched is not None:
            runs["dispatched"].append(_run(dispatched, args.threads))
    print(f"{'product (m x k x n)':20} {'stock GFLOP/s':>13} {'dispatched':>10} {'ratio':>6}")
    for shape in runs["stock"][0]:
        base = statistics.median(r[shape] for r in runs["stock"])
        if not runs["dispatched"]:
            print(f"{shape:20} {base:13.1f}")
            continue
        fast = statistics.median(r[shape] for r in runs["dispatched"])
        print(f"{shape:20} {base:13.1f} {fast:10.1f} {fast / base:6.2f}")


if __name__ == "__main__":
    main()
