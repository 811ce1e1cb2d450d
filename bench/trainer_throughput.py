"""Useful-token throughput of Whetstone's trainer against two plain HF Trainer + PEFT baselines.

    .venv/bin/python bench/trainer_throughput.py [--examples 384] [--cutoff 512]

One model (Llama architecture, >= 10M parameters) and one dataset are built on the spot: most
examples short, a long tail up to the cutoff. Every contender trains LoRA (all-linear, r 16)
on the same examples with the same batch size, learning rate and number of steps, each in its
own process so peak RSS is its own:
- whetstone: `trainer.recipe.run_plan` with `batching: auto` (on a CPU: each batch packed into
  one row, attention run per example; on a GPU: packing with flash-attention when installed);
- baseline (a): HF Trainer + PEFT, every batch padded to the cutoff;
- baseline (b): HF Trainer + PEFT, dynamic padding per batch (random batches).
Printed: useful (non-padding) tokens/s, ratios, peak RSS, and the held-out loss each reaches.
Every contender's clock is the same: from the Trainer's `on_train_begin` (model loaded, data
encoded, optimizer built) to its last logged step; loading, evaluation and saving are outside.
`--repeats N` runs the three N times, interleaved, and prints every round and the median, so a
burst of load from other work on the machine lands on one round instead of one contender.

On a CUDA GPU it then trains a ~1.0B-parameter Llama (TinyLlama's width and depth) with the
same recipe and prints its model FLOPs utilization: (4 x base parameters + 6 x adapter
parameters) x useful tokens/s over the GPU's dense bf16 peak. A frozen base needs no weight
gradients, hence 4 rather than 6; attention FLOPs are left out, so the figure is a floor.
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

        def close(self) -> None:
            return None

    plan = TrainerPlan.model_validate(
        {
            "job_id": "bench",
            "data": str(data),
            "output": str(workdir / "out"),
            "spec": short_lora_spec(
                model,
                rank=16,
                learning_rate=LEARNING_RATE,
                batch_size=BATCH,
                sequence_length=cutoff,
            ),
        }
    )
    sink = Keep()
    from trainer.recipe import run_plan

    run_plan(plan, emitter=EventEmitter("bench", sink), workdir=workdir, stop=StopRequest())
    # tokens_per_second: non-padding tokens since on_train_begin over the time since then
    last = [e.detail for e in sink.events if e.detail_type == "metrics"][-1]
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
    return {
        "useful_tokens_per_s": last.tokens_per_second,
        "peak_rss_mb": peak,
        "heldout_loss": heldout_loss(
            adapted, _encoded(model, data, "test", cutoff), tokenizer.pad_token_id
        ),
        "steps": last.step,
        "setup": f"{runtime['batching']}, {runtime['attention']}",
    }


class _TrainClock:
    """Non-padding tokens over the time from on_train_begin to the last logged step: the same
    clock as Whetstone's metrics events."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        clock = self

        class Callback(TrainerCallback):  # type: ignore[misc]
            def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
                clock.start = time.monotonic()

            def on_log(
                self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any
            ) -> None:
                if "loss" not in (logs or {}):  # the end-of-training summary, as ours skips
                    return
                clock.tokens_per_s = state.num_input_tokens_seen / (time.monotonic() - clock.start)

        self.start = 0.0
        self.tokens_per_s = 0.0
        self.callback = Callback()


def run_baseline(model: Path, data: Path, cutoff: int, workdir: Path, pad: str) -> dict[str, Any]:
    """Plain HF Trainer + PEFT on the same encoded examples; `pad` 'cutoff' or 'longest'."""
    import torch
    from peft import LoraConfig, get_peft_model
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
        "peak_rss_mb": _peak_rss_mb(),
        "heldout_loss": heldout_loss(
            peft_model, _encoded(model, data, "test", cutoff), tokenizer.pad_token_id
        ),
        "steps": trainer.state.global_step,
        "setup": f"padded to {'the cutoff' if pad == 'cutoff' else 'the batch'}, sdpa",
    }


# Dense bf16 tensor-core peaks (FLOP/s) from NVIDIA's data sheets, by a name fragment of
# torch.cuda.get_device_name().
PEAK_BF16_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 125e12,
    "L4": 121e12,
    "T4": 65e12,  # fp16: a T4 has no bf16
}


def run_mfu(data: Path, cutoff: int, workdir: Path) -> dict[str, Any]:
    """Our recipe on a ~1.0B-parameter model on this GPU: useful tokens/s and MFU."""
    import torch
    from transformers import AutoConfig

    from whetstone.inference.tiny import build_tiny_model

    model = build_tiny_model(
        workdir / "model-1b", hidden=2048, layers=22, heads=32, intermediate=5632
    )
    config = AutoConfig.from_pretrained(model)
    last, runtime = train_whetstone(model, data, cutoff, workdir / "run")
    base = _llama_parameters(config)
    adapter = _lora_parameters(config, rank=16)
    flops = (4 * base + 6 * adapter) * last.tokens_per_second
    device = torch.cuda.get_device_name(0)
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in device), None)
    return {
        "device": device,
        "parameters": base,
        "useful_tokens_per_s": last.tokens_per_second,
        "model_tflops": flops / 1e12,
        "mfu": flops / peak if peak else None,
        "setup": f"{runtime['batching']}, {runtime['attention']}, {runtime['precision']}",
    }


def _llama_parameters(config: Any) -> int:
    hidden, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    kv = config.num_key_value_heads * (hidden // config.num_attention_heads)
    per_layer = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * inter + 2 * hidden
    return int(layers * per_layer + 2 * config.vocab_size * hidden + hidden)


def _lora_parameters(config: Any, rank: int) -> int:
    """LoRA on every linear layer of the blocks: r x (in + out) per layer."""
    hidden, inter = config.hidden_size, config.intermediate_size
    kv = config.num_key_value_heads * (hidden // config.num_attention_heads)
    shapes = [(hidden, hidden), (hidden, kv), (hidden, kv), (hidden, hidden)]
    shapes += [(hidden, inter), (hidden, inter), (inter, hidden)]
    return int(config.num_hidden_layers * sum(rank * (a + b) for a, b in shapes))


def worker(kind: str, model: Path, data: Path, cutoff: int) -> None:
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        if kind == "mfu":
            result = run_mfu(data, cutoff, workdir)
        elif kind == "whetstone":
            result = run_whetstone(model, data, cutoff, workdir)
        else:
            result = run_baseline(model, data, cutoff, workdir, pad=kind.split("-")[1])
    sys.__stdout__.write("RESULT " + json.dumps(result) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=384)
    parser.add_argument("--cutoff", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=1, help="rounds of all three, interleaved")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, Path(args.model), Path(args.data), args.cutoff)
        return

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
            rounds.append(_run_round(model, data, args.cutoff))
            if args.repeats > 1:
                print(f"round {number}")
            _print_table(rounds[-1])
        mfu = _run_worker("mfu", model, data, args.cutoff) if _has_gpu() else None
    if args.repeats > 1:
        print(f"median of {args.repeats} rounds")
        _print_table(
            {
                kind: {
                    key: statistics.median(r[kind][key] for r in rounds)
                    if isinstance(rounds[0][kind][key], float | int)
                    else rounds[0][kind][key]
                    for key in rounds[0][kind]
                }
                for kind in CONTENDERS
            }
        )
    if mfu is None:
        print("MFU: no CUDA GPU here; on one, a ~1.0B-parameter model's MFU is printed here")
    else:
        share = f"{mfu['mfu']:.1%}" if mfu["mfu"] is not None else "unknown peak for this GPU"
        print(
            f"MFU on {mfu['device']}: {mfu['parameters'] / 1e9:.2f}B parameters, LoRA r16 "
            f"all-linear, {mfu['setup']}: {mfu['useful_tokens_per_s']:.0f} useful tok/s, "
            f"{mfu['model_tflops']:.1f} model TFLOP/s, MFU {share}"
        )


CONTENDERS = {
    "whetstone": "whetstone",
    "baseline-cutoff": "(a) HF+PEFT pad to cutoff",
    "baseline-longest": "(b) HF+PEFT dynamic padding",
}


def _run_round(model: Path, data: Path, cutoff: int) -> dict[str, dict[str, Any]]:
    return {kind: _run_worker(kind, model, data, cutoff) for kind in CONTENDERS}


def _run_worker(kind: str, model: Path, data: Path, cutoff: int) -> dict[str, Any]:
    """One contender in its own process, so that its peak RSS is its own."""
    command = [sys.executable, __file__, "--worker", kind, "--model", str(model)]
    command += ["--data", str(data), "--cutoff", str(cutoff)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _print_table(results: dict[str, dict[str, Any]]) -> None:
    ours = results["whetstone"]["useful_tokens_per_s"]
    print(
        f"{'contender':28} {'useful tok/s':>12} {'ours/this':>9} {'peak RSS MB':>11} "
        f"{'held-out loss':>13} {'steps':>5}  batches"
    )
    for kind, r in results.items():
        print(
            f"{CONTENDERS[kind]:28} {r['useful_tokens_per_s']:12.0f} "
            f"{ours / r['useful_tokens_per_s']:9.2f} {r['peak_rss_mb']:11.0f} "
            f"{r['heldout_loss']:13.3f} {r['steps']:5d}  {r['setup']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
