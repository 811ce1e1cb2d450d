"""Benchmark: full dataset validation against a bare `json.loads` loop over the same data.

Generates JSON-lines files in the four JSON formats (OpenAI chat, ShareGPT,
Alpaca, generic prompt/completion; a valid dataset has one format per file, so
the mix is spread over one file per format), with varied lengths, unicode and
~3% duplicates. Then, in this one process, times a bare parse loop and the full
validation report, and prints both throughputs, their ratio and the
validator's peak RSS (measured in a child process so the parse loop and the
generator do not count).

    .venv/bin/python bench/dataset_validation.py [--examples 200000] [--keep DIR]

Targets: ratio <= 2.0, peak RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORMATS = ("openai", "sharegpt", "alpaca", "jsonl")
WORDS = (
    "the model learns from examples and returns answers about data training loss gradient "
    "token batch epoch adapter rank quantization café naïve 東京 données résumé why how what"
).split()


def _sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."


def _example(rng: random.Random, fmt: str) -> dict[str, object]:
    turns = rng.choice((1, 1, 2, 3))
    pairs = [(_sentence(rng, 5, 30), _sentence(rng, 10, 45)) for _ in range(turns)]
    if fmt == "openai":
        messages: list[dict[str, object]] = [{"role": "system", "content": _sentence(rng, 3, 10)}]
        for question, answer in pairs:
            messages.append({"role": "user", "content": question})
            messages.append({"role": "assistant", "content": answer, "weight": 1})
        return {"messages": messages}
    if fmt == "sharegpt":
        conversation = []
        for question, answer in pairs:
            conversation.append({"from": "human", "value": question})
            conversation.append({"from": "gpt", "value": answer})
        return {"conversations": conversation}
    if fmt == "alpaca":
        return {
            "instruction": pairs[0][0],
            "input": _sentence(rng, 0, 15) if rng.random() < 0.5 else "",
            "output": pairs[0][1],
            "history": [list(pair) for pair in pairs[1:]],
        }
    return {"prompt": pairs[0][0], "completion": pairs[0][1]}


def generate(folder: Path, examples: int, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    paths = []
    for fmt in FORMATS:
        path = folder / f"{fmt}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            previous = ""
            for _ in range(examples // len(FORMATS)):
                line = json.dumps(_example(rng, fmt), ensure_ascii=rng.random() < 0.5)
                if previous and rng.random() < 0.03:
                    line = previous
                out.write(line + "\n")
                previous = line
        paths.append(path)
    return paths


def bare_parse(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        with path.open("rb") as stream:
            for line in stream:
                json.loads(line)
    return time.perf_counter() - start


def validate(paths: list[Path]) -> tuple[float, int]:
    from whetstone.core.datasets.options import ValidationOptions
    from whetstone.core.datasets.validator import validate_dataset

    start = time.perf_counter()
    examples = 0
    for path in paths:
        with path.open("rb") as stream:
            report = validate_dataset(stream, ValidationOptions(filename=path.name))
        if not report.valid:
            raise SystemExit(f"{path.name}: unexpected errors {report.stats.error_counts}")
        examples += report.num_examples
    return time.perf_counter() - start, examples


def _child(paths: list[str], repeat: int) -> None:
    seconds, examples = min(validate([Path(p) for p in paths]) for _ in range(repeat))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stdout.write(json.dumps({"seconds": seconds, "examples": examples, "rss_kib": peak_kib}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs of each")
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.repeat)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        paths = generate(folder, args.examples)
        size = sum(p.stat().st_size for p in paths)
        mb = size / 1e6
        bare_parse(paths)  # warm the page cache
        # Best of `--repeat` for both, interleaved, so load from other processes
        # on the machine does not bias one side.
        bare = full = float("inf")
        result: dict[str, float] = {}
        for _ in range(args.repeat):
            bare = min(bare, bare_parse(paths))
            run = json.loads(
                subprocess.run(
                    [sys.executable, __file__, "--repeat", "2", "--child", *map(str, paths)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            if run["seconds"] < full:
                full, result = run["seconds"], run
        print(f"data: {result['examples']:,} examples in {len(paths)} files, {mb:.1f} MB")
        print(f"bare json.loads loop: {mb / bare:8.1f} MB/s  ({bare:.2f} s)")
        print(f"full validation:      {mb / full:8.1f} MB/s  ({full:.2f} s)")
        print(f"ratio (validation / bare): {full / bare:.2f}  (target <= 2.0)")
        print(f"validator peak RSS: {result['rss_kib'] / 1024:.0f} MB  (target < 300 MB)")


if __name__ == "__main__":
    main()
