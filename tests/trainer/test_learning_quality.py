"""The pre-trained tiny base (built once, cached by its config) and the learning-quality
bench's list of methods (every one the platform trains)."""

from __future__ import annotations

import importlib.util
import json
import typing
from pathlib import Path
from types import ModuleType

from whetstone.core.spec import JobSpec, Method, QuantBits
from whetstone.inference.tiny_base import TinyBaseConfig, pretrained_tiny_base

ROOT = Path(__file__).resolve().parents[2]
TINY = TinyBaseConfig(hidden=32, layers=1, heads=2, steps=2, batch_size=2)


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "learning_quality", ROOT / "bench/learning_quality.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_base_is_pretrained_once_and_a_changed_config_builds_another(tmp_path: Path) -> None:
    # Given an empty cache
    said: list[str] = []

    # When the base is asked for twice with one config, then with another
    first = pretrained_tiny_base(TINY, tmp_path, said.append)
    built_once = len(said)
    again = pretrained_tiny_base(TINY, tmp_path, said.append)
    other = pretrained_tiny_base(TINY.model_copy(update={"steps": 3}), tmp_path, said.append)

    # Then the second call reuses the first model, the changed config trains its own,
    # and no half-built folder is left beside them
    assert again == first and (first / "model.safetensors").exists()
    assert built_once > 0 and said[built_once:][0].startswith("pre-training")
    assert other != first and (other / "model.safetensors").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, other.name])


def test_the_pretrained_base_loads_and_answers_in_the_chat_format(tmp_path: Path) -> None:
    # Given a tiny pre-trained base
    from whetstone.inference.generation import ChatModel

    folder = pretrained_tiny_base(TINY, tmp_path, lambda _: None)

    # When it is loaded as a server loads a model and asked something
    chat = ChatModel.load(folder)
    prompt = chat.chat_prompt([{"role": "user", "content": "Repeat the words.\n\nred cat kiwi"}])
    answer = chat.generate(prompt, max_tokens=4)

    # Then it answers with tokens of its own (what it says is the bench's business)
    assert answer.completion_tokens > 0


def test_the_bench_covers_every_method_and_quantization_the_platform_trains() -> None:
    # Given the bench's methods, each read as the platform reads a job spec
    bench = _bench()
    specs = [
        JobSpec.model_validate(bench.spec(Path("/base"), method, epochs=1))
        for method in bench.METHODS.values()
    ]

    # When the methods and QLoRA quantizations they cover are collected
    methods = {spec.method for spec in specs}
    quantizations = {
        (spec.quantization.bits, spec.quantization.quant_type)
        for spec in specs
        if spec.method is Method.QLORA
    }

    # Then every method and every bit width (both 4-bit float formats, integer 4 bits) is there
    assert methods == set(Method)
    widths = {(bits, "int4") for bits in typing.get_args(QuantBits) if bits != 4}
    assert quantizations == widths | {(4, "nf4"), (4, "fp4"), (4, "int4")}


def test_the_bench_reports_dpo_by_its_held_out_preferences_not_by_exact_match(
    tmp_path: Path,
) -> None:
    # Given the outputs of a finished dpo run: its losses, no exact answer, and the share
    # of held-out pairs whose chosen answer the tuned model and the base find the likelier
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 0, "eval_loss": 0.693}) + "\n")
    results = {"test_loss": 0.4, "test_preference_accuracy": 0.9}
    (tmp_path / "results.json").write_text(
        json.dumps({**results, "test_base_preference_accuracy": 0.5})
    )
    (tmp_path / "evaluation.json").write_text(
        json.dumps({"fine_tuned": {"exact_match": 0.0}, "base": {"exact_match": 0.0}})
    )

    # When the bench reads them
    row = _bench().outcome(tmp_path)

    # Then its row carries both preference accuracies beside the losses and exact match
    assert row == {
        "start": 0.693,
        "end": 0.4,
        "exact": 0.0,
        "base_exact": 0.0,
        "prefers": 0.9,
        "base_prefers": 0.5,
    }


def test_the_bench_trains_dpo_below_the_rate_at_which_it_diverged() -> None:
    # Given the bench's methods
    methods = _bench().METHODS

    # When the dpo rate is compared with the lora rate it once shared
    dpo, lora = methods["dpo"]["learning_rate"], methods["lora"]["learning_rate"]

    # Then dpo trains at a fifth of it at most: at 5e-3 its rewards collapsed on `reverse`
    assert dpo <= lora / 5
