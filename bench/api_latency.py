"""API latency: the Lambda module's cold import against boto3's, and create/get/list
percentiles through `whet serve` under a bounded loopback load.

    .venv/bin/python bench/api_latency.py [--imports 7] [--clients 4] [--requests 60]

Prints figures measured side by side in one run; targets: the API module imports in
at most 2x the time of `import boto3`.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

API = "/api/v1/fine-tuning"


def compile_sources() -> None:
    """Bytecode for the repository's packages, as the Lambda asset ships it
    (infra/lambda_code.py) and as pip wrote it for boto3: where PYTHONDONTWRITEBYTECODE is
    set, our modules would otherwise be compiled from source at every start."""
    for package in ("whetstone", "functions"):
        compileall.compile_dir(ROOT / package, quiet=1)


def cold_starts(statements: dict[str, str], runs: int) -> dict[str, float]:
    """Median wall time of a fresh interpreter running each statement, minus an empty one.

    The statements take turns, run after run, so a load that comes and goes on a shared
    machine weighs on each of them alike."""

    def run(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        return time.perf_counter() - start

    samples: dict[str, list[float]] = {name: [] for name in [*statements, "empty"]}
    for _ in range(runs):
        for name, code in [*statements.items(), ("empty", "pass")]:
            samples[name].append(run(code))
    empty = statistics.median(samples.pop("empty"))
    return {name: statistics.median(times) - empty for name, times in samples.items()}


def first_request_statement() -> str:
    """Import the API module and answer one authenticated `GET /jobs` (local runtime stores:
    SQLite and folders, not the DynamoDB and S3 clients a cold Lambda also builds)."""
    from whetstone.api.identity import claims_for
    from whetstone.cli.server import build_proxy_event
    from whetstone.cli.tokens import DEFAULT_CALLER

    event = build_proxy_event(
        "GET", f"{API}/jobs", {}, b"", "127.0.0.1", claims_for(DEFAULT_CALLER)
    )
    return (
        "import json, functions.api; "
        f"response = functions.api.handler(json.loads({json.dumps(event)!r}), None); "
        "assert response['statusCode'] == 200, response"
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def http(method: str, url: str, body: bytes | None = None, content_type: str = "") -> bytes:
    request = urllib.request.Request(url, data=body, method=method)
    if content_type:
        request.add_header("content-type", content_type)
    with urllib.request.urlopen(request, timeout=60) as response:
        return bytes(response.read())


def serve_load(clients: int, requests: int) -> dict[str, list[float]]:
    from support.apigw import multipart

    from whetstone.cli.server import make_server
    from whetstone.runtime import get_platform

    get_platform().orchestrator.start = lambda job: None  # type: ignore[method-assign]
    server = make_server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}{API}"
    rows = [{"prompt": f"Say {i}", "completion": str(i)} for i in range(200)]
    data = "\n".join(json.dumps(row) for row in rows).encode()
    config = json.dumps({"base_model": "qwen2.5-0.5b-instruct", "method": "lora"})
    body, content_type = multipart({"config": config}, {"file": ("d.jsonl", data)})

    def create() -> str:
        return str(json.loads(http("POST", f"{base}/jobs", body, content_type))["job_id"])

    job_ids = [create() for _ in range(3)]  # warm up
    timings: dict[str, list[float]] = {"create": [], "get": [], "list": []}
    lock = threading.Lock()

    def client(index: int) -> None:
        for i in range(requests):
            kind = ("create", "get", "list")[i % 3]
            if kind == "create":
                elapsed = timed(create)
            elif kind == "get":
                elapsed = timed(lambda: http("GET", f"{base}/jobs/{job_ids[index % 3]}"))
            else:
                elapsed = timed(lambda: http("GET", f"{base}/jobs?limit=20"))
            with lock:
                timings[kind].append(elapsed)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    server.shutdown()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--imports", type=int, default=7, help="interpreter starts per module")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--requests", type=int, default=60, help="requests per client")
    args = parser.parse_args()

    compile_sources()
    with tempfile.TemporaryDirectory() as home:
        os.environ["WHETSTONE_HOME"] = home
        cold = cold_starts(
            {
                "api": "import functions.api",
                "boto3": "import boto3",
                "first_request": first_request_statement(),
            },
            args.imports,
        )
    api, boto = cold["api"], cold["boto3"]
    print(f"cold start, median of {args.imports} (an empty interpreter subtracted):")
    print(f"  import functions.api               {api * 1000:7.1f} ms")
    print(f"  import boto3                       {boto * 1000:7.1f} ms")
    print(f"  ratio                              {api / boto:7.2f}  (target <= 2.00)")
    print(f"  import + first GET /jobs answered  {cold['first_request'] * 1000:7.1f} ms")
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, functions.api; "
            "print(sorted(m for m in ('torch', 'kubernetes', 'aws_xray_sdk', 'transformers') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    print(f"  heavy modules imported by functions.api: {heavy}")

    with tempfile.TemporaryDirectory() as home:
        os.environ["WHETSTONE_HOME"] = home
        # The quotas would refuse the load's jobs: lift them for the benchmark.
        os.environ["WHETSTONE_MAX_ACTIVE_JOBS"] = str(10 * args.clients * args.requests)
        os.environ["WHETSTONE_MAX_ACTIVE_GPUS"] = str(10 * args.clients * args.requests)
        timings = serve_load(args.clients, args.requests)
    print(f"\nwhet serve, {args.clients} clients x {args.requests} requests (create/get/list):")
    for kind, values in timings.items():
        print(
            f"  {kind:<7} n={len(values):4d}  p50 {percentile(values, 0.5) * 1000:7.1f} ms"
            f"  p99 {percentile(values, 0.99) * 1000:7.1f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
