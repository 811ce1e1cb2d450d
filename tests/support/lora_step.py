"""One LoRA training step of the tiny Llama: the loss and the adapter's gradients, to compare
a fused operation against the model's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

IDS = torch.tensor([[5, 9, 13, 40, 77, 81, 90, 8, 3, 21]])


def tiny_lora_model(model_dir: Path) -> Any:
    """LoRA on every linear layer, B random too, so every layer shapes the loss."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)
    return get_peft_model(base, config)


def loss_and_grads(model: Any) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = model(input_ids=IDS, labels=IDS).loss
    loss.backward()
    return loss.item(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}


def assert_same_step(
    got: tuple[float, dict[str, torch.Tensor]], expected: tuple[float, dict[str, torch.Tensor]]
) -> None:
    assert got[0] == pytest.approx(expected[0], rel=1e-6)
    assert got[1].keys() == expected[1].keys()
    for name, grad in expected[1].items():
        torch.testing.assert_close(got[1][name], grad, rtol=1e-4, atol=1e-6)
