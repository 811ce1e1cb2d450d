"""`make demo`: a real fine-tuning job through the local platform, start to finish.

Starts the local platform, takes the pre-trained tiny base model (pre-training it
once, then cached: `whetstone.inference.tiny_base`) and a sample instruction dataset
(unless given yours), creates a LoRA job through the REST API, follows it to
completed, prints the metrics, writes the loss curve, downloads the adapter and
prints the job's evaluation report: the base and the fine-tuned model's answers to
held-out prompts side by side, with their scores.

    python -m whetstone.cli.demo [--model DIR] [--dataset FILE] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tarfile
import threading
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from whetstone.api.schemas.evaluation import EvaluationResponse
from whetstone.api.schemas.jobs import JobResponse
from whetstone.cli.commands.evaluation import describe_evaluation
from whetstone.cli.commands.metrics import plot_losses
from whetstone.cli.output import ProgressBar
from whetstone.cli.server import make_server
from whetstone.client import WhetstoneClient
from whetstone.inference.tiny_base import pretrained_tiny_base
from whetstone.settings import get_settings

# The sample task: repeat a list of words back in order. The tiny base knows the words and
# the chat format but was never asked to repeat (it answers with one word or a count), and
# learns it in 120 LoRA steps (about 20 s on a CPU) at 5e-3: all 30 held-out prompts
# (docs/trainer.md, "Tiny models", has the timings and the rates tried).
WORDS = "red green blue yellow orange purple black white apple banana cherry grape".split()
SAMPLE_EXAMPLES = 600

DEMO_CONFIG: dict[str, Any] = {
    "method": "lora",
    "lora": {"r": 32, "alpha": 64, "dropout": 0.0, "target_modules": "all-linear"},
    "dataset": {"cutoff_length": 128},
    "training": {
        "epochs": 4,
        "batch_size": 16,
        "gradient_accumulation_steps": 1,
        "learning_rate": 5e-3,
        "warmup_steps": 10,
        "max_sequence_length": 128,
    },
    "advanced": {
        "early_stopping": False,
        "gradient_checkpointing": False,
        "logging_steps": 5,
        "eval_steps": 30,
        "save_steps": 60,
        "dataloader_workers": 0,
    },
    # An answer is three words, two spaces and the end of the turn: 8 tokens hold it.
    "evaluation": {"max_samples": 30, "max_new_tokens": 8},
    "hardware": {"gpu_type": "nvidia-l4"},
}


def one_thread_per_process(environ: MutableMapping[str, str]) -> None:
    """One PyTorch thread in this process (pre-training) and in the trainers it starts, unless
    OMP_NUM_THREADS says otherwise: a model this small has little to split between threads,
    and on cores other work also uses, two threads per process spin waiting for each other
    (the warm demo took 9 minutes so, 70 s with one; docs/trainer.md, "Tiny models")."""
    environ.setdefault("OMP_NUM_THREADS", "1")


def sample_dataset(path: Path, seed: int = 0) -> None:
    """Alpaca rows of the sample task, every word list distinct."""
    rng = random.Random(seed)
    lists: set[tuple[str, ...]] = set()
    while len(lists) < SAMPLE_EXAMPLES:
        lists.add(tuple(rng.sample(WORDS, 3)))
    rows = [
        {"instruction": "Repeat the words.", "input": " ".join(words), "output": " ".join(words)}
        for words in sorted(lists)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def summary(report: EvaluationResponse) -> str:
    """One line: how many held-out prompts each model answered exactly."""
    if report.status != "completed" or report.fine_tuned is None:
        return f"no answers were scored: {report.reason}"
    tuned = round(report.fine_tuned.exact_match * report.samples)
    base = (
        ""
        if report.base is None
        else (f" (the base model {round(report.base.exact_match * report.samples)})")
    )
    return (
        f"the fine-tuned model answers {tuned} of {report.samples} held-out prompts exactly{base}"
    )


def timing(record: JobResponse) -> str:
    """How long the job took, from its creation to its end, and what it cost."""
    end = record.finished_at or record.updated_at
    cost = record.cost
    return (
        f"the job took {(end - record.created_at).total_seconds():.0f} s: "
        f"{cost.compute_hours:.4f} GPU-hours (none on a CPU), ${cost.current_usd:.4f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="whetstone demo", description=__doc__)
    parser.add_argument("--model", type=Path, help="a local model folder (default: tiny)")
    parser.add_argument("--dataset", type=Path, help="a dataset file (default: sample task)")
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="where to write")
    args = parser.parse_args(argv)
    one_thread_per_process(os.environ)

    home = get_settings().home
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    model_dir = args.model.resolve() if args.model else pretrained_tiny_base()
    dataset = args.dataset
    if dataset is None:
        dataset = out / "sample-dataset.jsonl"
        sample_dataset(dataset)

    server = make_server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = WhetstoneClient(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    print(f"local platform listening on {client.base_url} (state in {home})")
    try:
        config = {**DEMO_CONFIG, "base_model": str(model_dir)}
        job = client.create_job(config, dataset, name="whetstone demo")
        print(f"created {job.job_id}: LoRA on {model_dir.name}, dataset {dataset}")
        bar = ProgressBar(sys.stdout)
        record = job.wait(poll_s=1.0, on_update=bar.update)
        bar.close()
        if record.status != "completed":
            reason = record.error.message if record.error else record.status
            print(f"the job ended {record.status}: {reason}", file=sys.stderr)
            return 3
        series = client.metrics(job.job_id)
        losses = [p.value for p in series.get("loss", [])]
        evals = [p.value for p in series.get("eval_loss", [])]
        print(f"\ntraining loss {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} reports")
        if evals:
            print(f"validation loss {evals[0]:.3f} -> {evals[-1]:.3f}")
        print(timing(record))
        plot_losses(series, out / "loss.png", f"{job.job_id} ({record.spec.method})")
        archive = job.download(out / "model.tar.gz")
        adapter = out / "adapter"
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(adapter, filter="data")
        print(f"wrote {out / 'loss.png'} and the adapter in {adapter}\n")
        report = client.evaluation(job.job_id)
        print(describe_evaluation(report))
        print(f"\n{summary(report)}")
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
