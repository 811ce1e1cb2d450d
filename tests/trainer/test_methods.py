"""Every method and every QLoRA bit width trains, saves, loads back and generates."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from whetstone.core.events import TrainerPhase
from whetstone.core.layout import OutputNames
from whetstone.core.serving import GoldenRecord

METHODS: dict[str, dict[str, Any]] = {
    "lora-q-v": {"method": "lora", "lora": {"target_modules": ["q_proj", "v_proj"]}},
    "lora-all-linear": {"method": "lora"},
    "qlora-nf4-double-quant": {"method": "qlora", "quantization": {"bits": 4}},
    "qlora-fp4-bf16": {
        "method": "qlora",
        "quantization": {
            "bits": 4,
            "quant_type": "fp4",
            "double_quant": False,
            "compute_dtype": "bfloat16",
        },
    },
    "qlora-int4": {"method": "qlora", "quantization": {"bits": 4, "quant_type": "int4"}},
    "qlora-8bit": {"method": "qlora", "quantization": {"bits": 8}},
    "qlora-2bit": {"method": "qlora", "quantization": {"bits": 2}},
    "qlora-3bit": {"method": "qlora", "quantization": {"bits": 3}},
    "qlora-5bit": {"method": "qlora", "quantization": {"bits": 5}},
    "qlora-6bit": {"method": "qlora", "quantization": {"bits": 6}},
    "full": {"method": "full"},
    "prompt-random": {"method": "prompt_tuning", "prompt_tuning": {"num_virtual_tokens": 4}},
    "prompt-text": {
        "method": "prompt_tuning",
        "prompt_tuning": {"init": "text", "init_text": "count the numbers"},
    },
}


@pytest.mark.parametrize("name", list(METHODS))
def test_method_trains_and_its_artifacts_load_back_and_generate(
    name: str, counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given a plan for this method
    from whetstone.inference.generation import ChatModel, golden_answer
    from whetstone.inference.loading import load_trained_model

    plan = counting_plan(**METHODS[name])

    # When it runs
    result, sink = run_job(plan, tmp_path / "work")

    # Then it trained every step and reported a finite loss
    assert result.outcome == "done" and result.global_step == 3
    losses = [m.loss for m in sink.of("metrics") if m.loss is not None]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    assert sink.of("status")[-1].phase is TrainerPhase.DONE
    # and wrote artifacts in Hugging Face layout
    model_dir = tmp_path / "out" / "model"
    names = {p.name for p in model_dir.iterdir()}
    assert {"tokenizer.json", "chat_template.jinja"} <= names
    if plan.spec.method.value == "full":
        assert "model.safetensors" in names
    else:
        assert {"adapter_config.json", "adapter_model.safetensors"} <= names
    # which load back and generate
    model, tokenizer = load_trained_model(model_dir)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "count from 3"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert out.shape[-1] == prompt["input_ids"].shape[-1] + 4
    # and recorded the greedy answer to the golden prompt that a deployment must repeat
    golden = GoldenRecord.model_validate_json((tmp_path / "out" / OutputNames.GOLDEN).read_text())
    assert golden.answer == golden_answer(ChatModel(model, tokenizer))


def test_lora_merged_model_matches_the_adapter(
    counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    # Given a LoRA run asked to merge its adapter
    from transformers import AutoModelForCausalLM

    from whetstone.inference.loading import load_trained_model

    plan = counting_plan(options={"merge_adapter": True})
    run_job(plan, tmp_path / "work")

    # When the merged model and base+adapter read the same input
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "out" / "merged").eval()
    adapted, _ = load_trained_model(tmp_path / "out" / "model")
    ids = torch.tensor([[5, 17, 42, 99, 3]])

    # Then they give the same logits
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, adapted(ids).logits, atol=1e-4, rtol=1e-4)
    results = json.loads((tmp_path / "out" / OutputNames.RESULTS).read_text())
    assert results["merged_model"].endswith("merged")


GPU_METHODS = ["lora-all-linear", "qlora-nf4-double-quant", "qlora-int4", "full", "prompt-random"]


@pytest.mark.gpu
@pytest.mark.parametrize("name", GPU_METHODS)
def test_method_trains_on_gpu_in_half_precision(
    name: str, counting_plan: Any, run_job: Any, tmp_path: Path
) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    # Given a GPU run (hardware L4: bf16 when the GPU has it, fp16 otherwise)
    plan = counting_plan(**METHODS[name])
    # When it trains
    result, sink = run_job(plan, tmp_path / "work")
    # Then precision followed the hardware, losses stayed finite and GPU memory was reported
    runtime = next(e for e in sink.of("log") if e.message == "runtime decided").fields
    expected = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    assert runtime["device"] == "cuda" and runtime["precision"] == expected
    assert result.outcome == "done"
    assert all(m.loss is None or math.isfinite(m.loss) for m in sink.of("metrics"))
