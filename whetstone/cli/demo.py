"""`make demo`: a real fine-tuning job through the local platform, start to finish.

Starts the local platform, builds a tiny model and a sample instruction dataset
(unless given yours), creates a LoRA job through the REST API, follows it to
completed, prints the metrics, writes the loss curve, downloads the adapter and
shows the base and the fine-tuned model's answers to held-out prompts side by side.

    python -m whetstone.cli.demo [--model DIR] [--dataset FILE] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tarfile
import threading
from pathlib import Path
from typing import Any

from whetstone.api.schemas.jobs import JobResponse
from whetstone.cli.commands.metrics import plot_losses
from whetstone.cli.output import progress_line
from whetstone.cli.server import make_server
from whetstone.client import WhetstoneClient
from whetstone.core.layout import JobLayout
from whetstone.runtime import get_platform
from whetstone.settings import get_settings

# The sample task: repeat a list of words back in order. A tiny random model
# cannot do it before training and learns it in a few minutes of LoRA on CPU.
WORDS = "red green blue yellow orange purple black white apple banana cherry grape".split()
SAMPLE_EXAMPLES = 600
HELD_OUT_SHOWN = 6

DEMO_CONFIG: dict[str, Any] = {
    "method": "lora",
    "lora": {"r": 64, "alpha": 128, "dropout": 0.0, "target_modules": "all-linear"},
    "dataset": {"cutoff_length": 128},
    "training": {
        "epochs": 8,
        "batch_size": 16,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1e-3,
        "warmup_steps": 10,
        "max_sequence_length": 128,
    },
    "advanced": {
        "early_stopping": False,
        "gradient_checkpointing": False,
        "logging_steps": 10,
        "eval_steps": 40,
        "save_steps": 40,
        "dataloader_workers": 0,
    },
    "hardware": {"gpu_type": "nvidia-l4"},
}


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


def tiny_model(folder: Path) -> Path:
    if not (folder / "config.json").exists():
        from whetstone.inference.tiny import build_tiny_model

        print(f"building a tiny model in {folder}")
        build_tiny_model(folder, hidden=128, layers=4, heads=4)
    return folder


def held_out_examples(job: JobResponse, count: int) -> list[dict[str, Any]]:
    """Examples of the job's test split: never trained on."""
    blobs = get_platform().blobs
    key = JobLayout.of(job).split("test")
    with blobs.open(key) as stream:
        rows = [json.loads(line) for line in stream.read().decode().splitlines() if line]
    return rows[:count]


def _messages(example: dict[str, Any]) -> tuple[list[dict[str, str]], str]:
    """The prompt turns of a normalized example and its expected answer."""
    if example["kind"] == "chat":
        turns = example["messages"]
        return [{"role": t["role"], "content": t["content"]} for t in turns[:-1]], turns[-1][
            "content"
        ]
    prompt = example.get("prompt") or example.get("text") or ""
    return [{"role": "user", "content": prompt}], example.get("completion") or example.get(
        "label"
    ) or ""


def compare_answers(base_dir: Path, adapter_dir: Path, examples: list[dict[str, Any]]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from whetstone.inference.loading import load_trained_model

    tokenizer: Any = AutoTokenizer.from_pretrained(adapter_dir)
    base: Any = AutoModelForCausalLM.from_pretrained(base_dir)
    tuned, _ = load_trained_model(adapter_dir, base_model=str(base_dir))
    stops = [tokenizer.eos_token_id]
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id:
        stops.append(end_of_turn)

    def answer(model: Any, messages: list[dict[str, str]]) -> str:
        inputs = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        output = model.generate(**inputs, max_new_tokens=24, do_sample=False, eos_token_id=stops)
        text = tokenizer.decode(output[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return " ".join(text.split())[:48]

    print(f"\n{'held-out prompt':<44} {'expected':<26} {'base model':<30} fine-tuned")
    right = 0
    for example in examples:
        messages, expected = _messages(example)
        prompt = " ".join(messages[-1]["content"].split())[:42]
        base_answer, tuned_answer = answer(base, messages), answer(tuned, messages)
        right += tuned_answer == " ".join(expected.split())
        print(f"{prompt:<44} {expected[:24]:<26} {base_answer[:28]:<30} {tuned_answer}")
    print(f"\nthe fine-tuned model answers {right} of {len(examples)} held-out prompts exactly")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="whetstone demo", description=__doc__)
    parser.add_argument("--model", type=Path, help="a local model folder (default: tiny)")
    parser.add_argument("--dataset", type=Path, help="a dataset file (default: sample task)")
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="where to write")
    args = parser.parse_args(argv)

    home = get_settings().home
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    model_dir = args.model.resolve() if args.model else tiny_model(home / "demo" / "tiny-model")
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
        record = job.wait(poll_s=1.0, on_update=lambda r: print(progress_line(r), flush=True))
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
        print(
            f"took {record.cost.compute_hours * 3600:.0f} s of compute; at the job's "
            f"{record.spec.hardware.gpu_type} rate that is ${record.cost.current_usd:.4f}"
        )
        plot_losses(series, out / "loss.png", f"{job.job_id} ({record.spec.method})")
        archive = job.download(out / "model.tar.gz")
        adapter = out / "adapter"
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(adapter, filter="data")
        print(f"wrote {out / 'loss.png'} and the adapter in {adapter}")
        compare_answers(model_dir, adapter, held_out_examples(record, HELD_OUT_SHOWN))
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
