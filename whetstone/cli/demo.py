"""`make demo`: start the local platform and plan a sample job through its REST API.

The full demo (a real LoRA job followed to completion) builds on the jobs API
and the workflow; until those land, this shows the planning half of the path.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

from whetstone.cli.server import make_server

SAMPLE_JOB = {
    "model_id": "llama-3.1-8b-instruct",
    "method": "qlora",
    "num_examples": 2000,
    "epochs": 3,
    "gpu_type": "nvidia-a10g",
    "gpu_count": 1,
}


def _call(base_url: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base_url}{path}", data=data, method=method)
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def main() -> int:
    server = make_server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"local platform listening on {base_url}\n")
    try:
        model_id = SAMPLE_JOB["model_id"]
        path = f"/api/v1/fine-tuning/models/{model_id}/requirements"
        requirements = _call(base_url, "GET", path)
        print(f"GET {path}")
        print(f"{'method':<15}{'memory/GPU':>12}  cheapest fitting hardware")
        for item in requirements["methods"]:
            choice = item["smallest_fitting"]
            where = (
                f"{choice['gpu_count']} x {choice['gpu_type']} ({choice['instance_type']}, "
                f"${choice['hourly_rate_usd']:.2f}/h)"
                if choice
                else "none"
            )
            print(f"{item['method']:<15}{item['required_gib']:>9.1f} GiB  {where}")

        print(f"\nPOST /api/v1/fine-tuning/estimate-cost {json.dumps(SAMPLE_JOB)}")
        estimate = _call(base_url, "POST", "/api/v1/fine-tuning/estimate-cost", SAMPLE_JOB)
        print(
            f"fits: {estimate['fits']} ({estimate['required_gib']:.1f} GiB per GPU)\n"
            f"estimated hours: {estimate['estimated_hours']:.2f} "
            f"(training {estimate['training_hours']:.2f} + overhead "
            f"{estimate['overhead_hours']:.2f})\n"
            f"estimated cost: ${estimate['estimated_cost_usd']:.2f} at "
            f"${estimate['hourly_rate_usd']:.3f}/h on {estimate['instance_type']}\n"
            f"tokens: {estimate['total_tokens']:,} "
            f"({estimate['tokens_per_example']} per example)"
        )
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
