"""Useful-token throughput and MFU of Whetstone's trainer against three HF Trainer + PEFT baselines.

    .venv/bin/python bench/trainer_throughput.py [--examples 384] [--cutoff 512]
        [--repeats 1] [--baselines cutoff,longest,grouped] [--threads N]

One model (Llama architecture, >= 10M parameters) and one dataset are built on the spot: most
examples short, a long tail up to the cutoff. Every contender trains LoRA (all-linear, r 16)
on the same examples with the same batch size, learning rate and number of steps, each in its
own process so peak RSS is its own:
- whetstone: `trainer.recipe.run_plan` with `batching: auto` (on a CPU: each batch packed into
  one row, attention run per example; on a GPU: packing with flash-attention when installed);
- baseline (a): HF Trainer + PEFT, every batch padded to the cutoff;
- baseline (b): HF Trainer + PEFT, dynamic padding per batch (random batches);
- baseline (c): HF Trainer + PEFT, dynamic padding with `train_sampling_strategy=
  "group_by_length"` (transformers 5's name for `group_by_length=True`), the best correct
  off-the-shelf recipe on a CPU.
Printed: useful (non-padding) tokens/s, useful tokens per CPU-second (the CPU time of the
contender's process over the same span: on shared cores, what the work costs rather than
how much of the machine it got), ratios, MFU, peak RSS, and the held-out loss each reaches.
`--threads 1` gives each contender one torch thread, so that no thread spins waiting for
another's busy core. MFU is the same for everyone: the model FLOPs of the epoch
(Whetstone's reckoning, `trainer/efficiency.py`, the same examples for all) per second over
the CPU's matmul peak, each contender measuring that peak in its own process.
Every contender's clock is the same: from the Trainer's `on_train_begin` (model loaded, data
encoded, optimizer built) to its last logged step; loading, evaluation and saving are outside.
`--repeats N` runs the three N times, interleaved, and prints every round and the median, so a
burst of load from other work on the machine lands on one round instead of one contender.
Whetstone's process starts the way `python -m trainer` runs the train stage
(`trainer/train_process.py`): with glibc's allocator keeping a step's memory for the next and,
on an AMD CPU, oneMKL's vendor check lifted; the baselines run stock, as off the shelf, unless
`--same-setup` starts them the same way, which compares the recipes alone. The last column
says how each contender ran.

On a CUDA GPU it then trains a ~1.0B-parameter Llama (TinyLlama's width and depth) with the
same recipe and prints the MFU its metrics report: model FLOPs (4 x base + 6 x adapter
parameters per token, plus attention) over the GPU's dense 16-bit peak in the hardware catalog.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BATCH = 8
LEARNING_RATE = 1e-3
WORDS = "alpha beta gamma delta the model learns to answer with words of many lengths".split()


def _example(rng: random.Random, words: int) -> dict[str, Any]:
    answer = " ".join(rng.choice(WORDS) for _ in range(words))
    return {
        "kind": "chat",
        "messages": [
            {"role": "user", "content": f"say {words} words"},
            {"role": "assistant", "content": answer},
        ],
    }


def _lengths(rng: random.Random, n: int, cutoff: int) -> list[int]:
    """Words per answer: a log-normal body (median 20 words), and a 15% tail of cutoff/4 to
    cutoff words. A word is 3-4 tokens of the tiny tokenizer, so the body's median example is
    ~90 tokens and most of the tail is cut at the cutoff (~13% of examples end there)."""
    out = []
    for _ in range(n):
        if rng.random() < 0.15:
            out.append(rng.randint(cutoff // 4, cutoff))
        else:
            out.append(max(2, min(cutoff, int(rng.lognormvariate(math.log(20), 0.6)))))
    return out


def prepare(root: Path, examples: int, cutoff: int) -> tuple[Path, Path]:
    from support.tiny_run import write_chat_splits

    from whetstone.inference.tiny import build_tiny_model

    model = build_tiny_model(root / "model", hidden=384, layers=6, heads=6, intermediate=1024)
    rng = random.Random(0)
    splits = {
        "train": [_example(rng, w) for w in _lengths(rng, examples, cutoff)],
        "validation": [],
        "test": [_example(rng, w) for w in _lengths(rng, 64, cutoff)],
    }
    return model, write_chat_splits(root / "data", splits, seed=0)


def _encoded(model: Path, data: Path, split: str, cutoff: int) -> list[dict[str, list[int]]]:
    from trainer.data import ExampleEncoder, read_split
    from trainer.storage import FolderLocation
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    rows, _ = read_split(FolderLocation(data), split, ExampleEncoder(tokenizer, cutoff))
    return rows.rows


def heldout_loss(peft_model: Any, rows: list[dict[str, list[int]]], pad_id: int) -> float:
    """Token-weighted loss on the held-out rows: the same code for every contender."""
    import torch
    from trainer.data import PaddingCollator

    peft_model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows), BATCH):
            batch = PaddingCollator(pad_id)(rows[start : start + BATCH])
            logits = peft_model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
            labels = batch["labels"][:, 1:]
            losses = torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1), labels.flatten(), reduction="sum", ignore_index=-100
            )
            total += float(losses)
            count += int((labels != -100).sum())
    return total / count


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_whetstone(model: Path, data: Path, cutoff: int, workdir: Path) -> tuple[Any, Any]:
    """Our recipe on the bench's LoRA spec: (the last metrics event, the runtime chosen)."""
    from support.tiny_run import short_lora_spec
    from trainer.checkpoints import StopRequest
    from trainer.events import EventEmitter

    from whetstone.core.plan import TrainerPlan

    class Keep:
        def __init__(self) -> None:
            self.events: list[Any] = []

        def send(self, event: Any) -> None:
            self.events.append(event)
            if event.detail_type == "metrics":
                CPU_CLOCK.mark()

        def close(self) -> None:
            return None

    spec = short_lora_spec(
        model, rank=16, learning_rate=LEARNING_RATE, batch_size=BATCH, sequence_length=cutoff
    )
    # The held-out loss below is the bench's comparison; the generations of the job's
    # evaluation step would only lengthen the run (they are outside the clock).
    spec["evaluation"] = {"enabled": False}
    plan = TrainerPlan.model_validate(
        {"job_id": "bench", "data": str(data), "output": str(workdir / "out"), "spec": spec}
    )
    sink = Keep()
    from trainer.callbacks import MetricsCallback
    from trainer.recipe import run_plan

    begin = MetricsCallback.on_train_begin

    def on_train_begin(self: Any, *args: Any, **kwargs: Any) -> None:
        CPU_CLOCK.begin()
        begin(self, *args, **kwargs)

    MetricsCallback.on_train_begin = on_train_begin  # type: ignore[method-assign]

    run_plan(plan, emitter=EventEmitter("bench", sink), workdir=workdir, stop=StopRequest())
    # useful_tokens_per_second: non-padding tokens since on_train_begin over the time since then
    metrics = [e.detail for e in sink.events if e.detail_type == "metrics"]
    last = [m for m in metrics if m.useful_tokens_per_second is not None][-1]
    runtime = next(
        e.detail.fields
        for e in sink.events
        if e.detail_type == "log" and e.detail.message == "runtime decided"
    )
    return last, runtime


def run_whetstone(model: Path, data: Path, cutoff: int, workdir: Path) -> dict[str, Any]:
    from whetstone.inference.loading import load_trained_model

    last, runtime = train_whetstone(model, data, cutoff, workdir)
    peak = _peak_rss_mb()
    adapted, tokenizer = load_trained_model(workdir / "out" / "model", base_model=str(model))
    efficiency = json.loads((workdir / "out" / "results.json").read_text())["efficiency"]
    useful_tokens = last.useful_tokens_per_second * CPU_CLOCK.wall_s
    return {
        "useful_tokens_per_s": last.useful_tokens_per_second,
        "useful_tokens_per_cpu_s": useful_tokens / CPU_CLOCK.cpu_s,
        "flops_per_token": efficiency["model_flops_per_useful_token"],
        "peak_flops": efficiency["peak_flops"],
        "peak_rss_mb": peak,
        "heldout_loss": heldout_loss(
            adapted, _encoded(model, data, "test", cutoff), tokenizer.pad_token_id
        ),
        "steps": last.step,
        "setup": f"{runtime['batching']}, {runtime['attention']}",
    }


class _CpuClock:
    """The CPU seconds (every thread of this process) and wall seconds from the Trainer's
    on_train_begin to the last logged step. CPU time is what a contender's work costs
    whatever else runs on the machine; wall time is not, on shared cores."""

    def __init__(self) -> None:
        self._cpu = self._wall = 0.0
        self.cpu_s = self.wall_s = 0.0

    def begin(self) -> None:
        self._cpu, self._wall = time.process_time(), time.monotonic()

    def mark(self) -> None:
        self.cpu_s = time.process_time() - self._cpu
        self.wall_s = time.monotonic() - self._wall


CPU_CLOCK = _CpuClock()


class _TrainClock:
    """Non-padding tokens over the time from on_train_begin to the last logged step: the same
    clock as Whetstone's metrics events."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        clock = self

        class Callback(TrainerCallback):  # type: ignore[misc]
            def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
                clock.start = time.monotonic()
                CPU_CLOCK.begin()

            def on_log(
                self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any
            ) -> None:
                if "loss" not in (logs or {}):  # the end-of-training summary, as ours skips
                    return
                clock.tokens_per_s = state.num_input_tokens_seen / (time.monotonic() - clock.start)
                CPU_CLOCK.mark()
                clock.tokens_per_cpu_s = state.num_input_tokens_seen / CPU_CLOCK.cpu_s

        self.start = 0.0
        self.tokens_per_s = self.tokens_per_cpu_s = 0.0
        self.callback = Callback()


def run_baseline(model: Path, data: Path, cutoff: int, workdir: Path, pad: str) -> dict[str, Any]:
    """Plain HF Trainer + PEFT on the same encoded examples; `pad` 'cutoff', 'longest' or
    'grouped' (padded to the batch, batches grouped by length)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from trainer.efficiency import measured_cpu_peak_flops
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    tokenizer = AutoTokenizer.from_pretrained(model)
    train = _encoded(model, data, "train", cutoff)
    set_seed(42)
    base = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    base.config.use_cache = False
    peft_model = get_peft_model(
        base,
        LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear"),
    )
    collator = DataCollatorForSeq2Seq(
        tokenizer,
        padding="max_length" if pad == "cutoff" else "longest",
        max_length=cutoff if pad == "cutoff" else None,
        label_pad_token_id=-100,
    )
    args = TrainingArguments(
        output_dir=str(workdir / "hf"),
        per_device_train_batch_size=BATCH,
        num_train_epochs=1,
        learning_rate=LEARNING_RATE,
        warmup_steps=0,
        weight_decay=0.01,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        train_sampling_strategy="group_by_length" if pad == "grouped" else "random",
        seed=42,
    )
    clock = _TrainClock()
    trainer = Trainer(
        model=peft_model,
        args=args,
        train_dataset=train,
        data_collator=collator,
        callbacks=[clock.callback],
    )
    trainer.train()
    return {
        "useful_tokens_per_s": clock.tokens_per_s,
        "useful_tokens_per_cpu_s": clock.tokens_per_cpu_s,
        "peak_flops": None if torch.cuda.is_available() else measured_cpu_peak_flops(),
        "peak_rss_mb": _peak_rss_mb(),
        "heldout_loss": heldout_loss(
            peft_model, _encoded(model, data, "test", cutoff), tokenizer.pad_token_id
        ),
        "steps": trainer.state.global_step,
        "setup": {
            "cutoff": "padded to the cutoff, sdpa",
            "longest": "padded to the batch, sdpa",
            "grouped": "grouped by length, padded to the batch, sdpa",
        }[pad],
    }


def run_mfu(data: Path, cutoff: int, workdir: Path) -> dict[str, Any]:
    """Our recipe on a ~1.0B-parameter model on this GPU: useful tokens/s and MFU."""
    import torch

    from whetstone.inference.tiny import build_tiny_model

    model = build_tiny_model(
        workdir / "model-1b", hidden=2048, layers=22, heads=32, intermediate=5632
    )
    last, runtime = train_whetstone(model, data, cutoff, workdir / "run")
    efficiency = json.loads((workdir / "run" / "out" / "results.json").read_text())["efficiency"]
    return {
        "device": torch.cuda.get_device_name(0),
        "useful_tokens_per_s": last.useful_tokens_per_second,
        "model_tflops": efficiency["model_flops_per_useful_token"]
        * last.useful_tokens_per_second
        / 1e12,
        "mfu": last.mfu,
        "peak": efficiency["peak_source"],
        "setup": f"{runtime['batching']}, {runtime['attention']}, {runtime['precision']}",
    }


def worker(kind: str, model: Path, data: Path, cutoff: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    from trainer import allocator, cpu_blas

    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        if kind == "mfu":
            result = run_mfu(data, cutoff, workdir)
        elif kind == "whetstone":
            result = run_whetstone(model, data, cutoff, workdir)
        else:
            result = run_baseline(model, data, cutoff, workdir, pad=kind.split("-")[1])
    result["setup"] += ", oneMKL dispatch preloaded" if cpu_blas.active() else ", stock BLAS"
    result["setup"] += ", malloc tuned" if allocator.active() else ", stock malloc"
    sys.__stdout__.write("RESULT " + json.dumps(result) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=384)
    parser.add_argument("--cutoff", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=1, help="rounds of all four, interleaved")
    parser.add_argument(
        "--baselines",
        default="cutoff,longest,grouped",
        help="the baselines to run beside whetstone, e.g. 'grouped' alone on a busy machine",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="torch threads of each contender (1 on a shared machine: idle threads spinning "
        "for a busy core's would count as CPU time)",
    )
    parser.add_argument(
        "--same-setup",
        action="store_true",
        help="start the baselines' processes as the train stage's too: its allocator tunables "
        "and oneMKL dispatch (trainer/train_process.py)",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, Path(args.model), Path(args.data), args.cutoff, args.threads)
        return

    kinds = ["whetstone", *(f"baseline-{name}" for name in args.baselines.split(","))]
    unknown = set(kinds) - CONTENDERS.keys()
    if unknown:
        parser.error(f"unknown baselines: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory() as scratch:
        model, data = prepare(Path(scratch), args.examples, args.cutoff)
        from transformers import AutoModelForCausalLM

        params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model).parameters())
        rows = _encoded(model, data, "train", args.cutoff)
        lengths = sorted(len(r["input_ids"]) for r in rows)
        print(
            f"model: {params / 1e6:.1f}M parameters; {len(rows)} examples, tokens per example "
            f"mean {sum(lengths) / len(lengths):.0f}, median {lengths[len(lengths) // 2]}, "
            f"p90 {lengths[int(len(lengths) * 0.9)]}, max {lengths[-1]}, cutoff {args.cutoff}; "
            f"batch {BATCH}, LoRA r16 all-linear",
            flush=True,
        )
        rounds = []
        for number in range(1, args.repeats + 1):
            rounds.append(
                _run_round(model, data, args.cutoff, kinds, args.threads, args.same_setup)
            )
            if args.repeats > 1:
                print(f"round {number}")
            _print_table(rounds[-1])
        mfu = None
        if _has_gpu():
            mfu = _run_worker("mfu", model, data, args.cutoff, args.threads, as_trainer=True)
    if args.repeats > 1:
        # A ratio is taken within each round, whose contenders ran back to back, then its
        # median over the rounds: a slow spell of the shared machine moves both sides of it.
        print(f"median of {args.repeats} rounds (ours/this: the median of the rounds' ratios)")
        _print_table(
            {
                kind: {
                    key: _median([r[kind][key] for r in rounds])
                    if isinstance(rounds[0][kind][key], float | int)
                    else rounds[0][kind][key]
                    for key in rounds[0][kind]
                }
                for kind in kinds
            },
            {kind: [_ratios(r, kind) for r in rounds] for kind in kinds},
        )
    if mfu is None:
        print("MFU: no CUDA GPU here; on one, a ~1.0B-parameter model's MFU is printed here")
    else:
        share = f"{mfu['mfu']:.1%}" if mfu["mfu"] is not None else "unknown peak for this GPU"
        print(
            f"MFU on {mfu['device']}: ~1.0B-parameter Llama, LoRA r16 all-linear, "
            f"{mfu['setup']}: {mfu['useful_tokens_per_s']:.0f} useful tok/s, "
            f"{mfu['model_tflops']:.1f} model TFLOP/s, MFU {share} ({mfu['peak']})"
        )


CONTENDERS = {
    "whetstone": "whetstone",
    "baseline-cutoff": "(a) HF+PEFT pad to cutoff",
    "baseline-longest": "(b) HF+PEFT dynamic padding",
    "baseline-grouped": "(c) HF+PEFT group_by_length",
}


def _run_round(
    model: Path, data: Path, cutoff: int, kinds: list[str], threads: int, same_setup: bool
) -> dict[str, dict[str, Any]]:
    return {
        kind: _run_worker(kind, model, data, cutoff, threads, same_setup or kind == "whetstone")
        for kind in kinds
    }


def _run_worker(
    kind: str, model: Path, data: Path, cutoff: int, threads: int, as_trainer: bool
) -> dict[str, Any]:
    """One contender in its own process, so that its peak RSS is its own; with `as_trainer`,
    its process starts as the train stage's does (`trainer/train_process.py`)."""
    from trainer.train_process import train_environment

    command = [sys.executable, __file__, "--worker", kind, "--model", str(model)]
    command += ["--data", str(data), "--cutoff", str(cutoff), "--threads", str(threads)]
    env = (train_environment(os.environ) if as_trainer else None) or dict(os.environ)
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


def _median(values: list[Any]) -> Any:
    """The median of a column; of an integer column (steps), one of its values."""
    if all(isinstance(value, int) for value in values):
        return statistics.median_low(values)
    return statistics.median(values)


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _mfu(flops_per_token: float, result: dict[str, Any]) -> str:
    """The contender's MFU: the epoch's model FLOPs at its pace over its own measured peak."""
    if not result["peak_flops"]:
        return "-"
    return f"{flops_per_token * result['useful_tokens_per_s'] / result['peak_flops']:.1%}"


def _ratios(results: dict[str, dict[str, Any]], kind: str) -> tuple[float, float]:
    """Ours over `kind`'s useful tokens per second and per CPU-second."""
    ours, other = results["whetstone"], results[kind]
    return (
        ours["useful_tokens_per_s"] / other["useful_tokens_per_s"],
        ours["useful_tokens_per_cpu_s"] / other["useful_tokens_per_cpu_s"],
    )


def _print_table(
    results: dict[str, dict[str, Any]],
    rounds_ratios: dict[str, list[tuple[float, float]]] | None = None,
) -> None:
    """One row per contender; the ratios are this table's own, or the median of
    `rounds_ratios` (each round's) where given."""
    flops_per_token = results["whetstone"]["flops_per_token"]
    print(
        f"{'contender':28} {'useful tok/s':>12} {'ours/this':>9} {'tok/CPU-s':>9} "
        f"{'ours/this':>9} {'CPU MFU':>7} {'peak RSS MB':>11} {'held-out loss':>13} "
        f"{'steps':>5}  batches"
    )
    for kind, r in results.items():
        if rounds_ratios is None:
            wall, cpu = _ratios(results, kind)
        else:
            wall = statistics.median(w for w, _ in rounds_ratios[kind])
            cpu = statistics.median(c for _, c in rounds_ratios[kind])
        print(
            f"{CONTENDERS[kind]:28} {r['useful_tokens_per_s']:12.0f} {wall:9.2f} "
            f"{r['useful_tokens_per_cpu_s']:9.0f} {cpu:9.2f} {_mfu(flops_per_token, r):>7} "
            f"{r['peak_rss_mb']:11.0f} {r['heldout_loss']:13.3f} {r['steps']:5d}  {r['setup']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
