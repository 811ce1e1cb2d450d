"""The fused RMSNorm: each Llama-style class's values and input gradients, its own forward
wherever the fused one does not apply."""

from __future__ import annotations

import copy
import importlib
from pathlib import Path

import pytest
import torch
from support.lora_step import assert_same_step, loss_and_grads, tiny_lora_model
from trainer.fused_norm import LLAMA_RMS_NORMS, use_fused_rms_norm

WIDTH = 48


def _norm(module: str, name: str, *, frozen: bool = True) -> torch.nn.Module:
    norm: torch.nn.Module = getattr(importlib.import_module(module), name)(WIDTH, eps=1e-5)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    return norm.requires_grad_(not frozen)


def _output_and_input_grad(
    norm: torch.nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    out = norm(x)
    out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
    assert x.grad is not None
    return out.detach(), x.grad


@pytest.mark.parametrize(("module", "name"), sorted(LLAMA_RMS_NORMS))
def test_fused_norm_gives_each_class_values_and_input_gradient(module: str, name: str) -> None:
    # Given one of the listed classes, and a copy of it given the fused forward
    own = _norm(module, name)
    fused = torch.nn.Sequential(copy.deepcopy(own))
    assert use_fused_rms_norm(fused) == 1

    # When both normalize the same rows (one of them much larger) and back-propagate
    torch.manual_seed(0)
    x = torch.randn(2, 7, WIDTH)
    x[1, 3] *= 100
    expected, expected_grad = _output_and_input_grad(own, x)
    out, grad = _output_and_input_grad(fused, x)

    # Then the outputs and the input's gradients are the class's own
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-6)


def test_a_trainable_weight_or_another_norm_keeps_its_own_forward() -> None:
    from transformers.models.gemma.modeling_gemma import GemmaRMSNorm

    trainable = _norm("transformers.models.llama.modeling_llama", "LlamaRMSNorm", frozen=False)
    gemma = GemmaRMSNorm(WIDTH).requires_grad_(False)
    model = torch.nn.Sequential(trainable, gemma)

    assert use_fused_rms_norm(model) == 0
    assert "forward" not in vars(trainable) and "forward" not in vars(gemma)
    model(torch.randn(3, WIDTH)).sum().backward()
    assert trainable.weight.grad is not None  # full fine-tuning still trains the norm


def test_no_gradients_other_dtypes_and_autocast_take_the_class_forward() -> None:
    # Given a fused norm, and the class's own
    own = _norm("transformers.models.llama.modeling_llama", "LlamaRMSNorm")
    fused = copy.deepcopy(own)
    use_fused_rms_norm(torch.nn.Sequential(fused))
    x = torch.randn(4, WIDTH)

    # Then without gradients (evaluation, generation), with a bfloat16 input (16-bit GPU
    # training) or under autocast it computes exactly the class's result
    with torch.no_grad():
        assert torch.equal(fused(x), own(x))
    assert torch.equal(fused(x.bfloat16()), own(x.bfloat16()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(fused(x), own(x))


def test_a_deep_copy_normalizes_with_its_own_weight() -> None:
    # Given a fused norm and a deep copy of it (how DPO builds its reference model)
    norm = _norm("transformers.models.llama.modeling_llama", "LlamaRMSNorm")
    use_fused_rms_norm(torch.nn.Sequential(norm))
    twin = copy.deepcopy(norm)

    # When the original's weight changes
    with torch.no_grad():
        norm.weight.mul_(2)

    # Then the copy still computes with its own
    x = torch.randn(3, WIDTH)
    assert torch.equal(norm(x), 2 * twin(x))


def test_a_lora_model_trains_to_the_same_loss_and_gradients(tiny_model_dir: Path) -> None:
    # Given a LoRA model of the tiny Llama
    model = tiny_lora_model(tiny_model_dir)

    # When it takes a step before and after its norms are fused
    plain = loss_and_grads(model)
    assert use_fused_rms_norm(model) == 2 * model.config.num_hidden_layers + 1
    fused = loss_and_grads(model)

    # Then the loss and the adapter's gradients are the same
    assert_same_step(fused, plain)
