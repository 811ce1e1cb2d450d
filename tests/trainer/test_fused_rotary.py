"""The fused rotary embedding: each listed module's values and gradients, the module's own
function wherever the fused one does not apply."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from support.lora_step import assert_same_step, loss_and_grads, tiny_lora_model
from trainer import fused_rotary
from trainer.fused_rotary import LLAMA_ROTARY, use_fused_rotary

LLAMA = "transformers.models.llama.modeling_llama"


def _own(module_name: str) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """The module's own function, whether or not this process replaced it already."""
    own = fused_rotary._originals.get(module_name)
    return own or importlib.import_module(module_name).apply_rotary_pos_emb  # type: ignore[no-any-return]


@pytest.fixture
def unpatched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Llama's module with its own function for the test, and as it was afterwards."""
    monkeypatch.setattr(importlib.import_module(LLAMA), "apply_rotary_pos_emb", _own(LLAMA))
    monkeypatch.setattr(fused_rotary, "_originals", {})


def _inputs() -> tuple[torch.Tensor, ...]:
    torch.manual_seed(0)
    q = torch.randn(2, 4, 9, 16, requires_grad=True)
    k = torch.randn(2, 2, 9, 16, requires_grad=True)
    angles = torch.randn(2, 9, 8)
    # Halves that differ, as no rotary variant builds them, so a swapped half shows.
    cos = torch.cat([angles.cos(), (2 * angles).cos()], dim=-1)
    sin = torch.cat([angles.sin(), (3 * angles).sin()], dim=-1)
    return q, k, cos, sin


def _values_and_grads(apply: Callable[..., Any], *inputs: torch.Tensor) -> list[torch.Tensor]:
    q, k, cos, sin = inputs
    q_out, k_out = apply(q, k, cos, sin)
    weights = torch.linspace(-1, 1, q_out.numel()).view_as(q_out)
    ((q_out * weights).sum() + k_out.square().sum()).backward()
    assert q.grad is not None and k.grad is not None
    result = [q_out.detach(), k_out.detach(), q.grad.clone(), k.grad.clone()]
    q.grad = k.grad = None
    return result


@pytest.mark.parametrize("module_name", sorted(LLAMA_ROTARY))
def test_fused_rotary_gives_each_module_values_and_gradients(module_name: str) -> None:
    own = _own(module_name)
    inputs = _inputs()

    def fused(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> Any:
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        return fused_rotary._Rotary.apply(q, cos, sin), fused_rotary._Rotary.apply(k, cos, sin)

    for got, expected in zip(
        _values_and_grads(fused, *inputs), _values_and_grads(own, *inputs), strict=True
    ):
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.usefixtures("unpatched")
def test_a_lora_model_trains_to_the_same_loss_and_gradients(tiny_model_dir: Path) -> None:
    # Given a LoRA model of the tiny Llama
    model = tiny_lora_model(tiny_model_dir)
    own = importlib.import_module(LLAMA).apply_rotary_pos_emb

    # When it takes a step before and after its rotary embedding is fused
    plain = loss_and_grads(model)
    assert use_fused_rotary(model) and use_fused_rotary(model)  # twice: replaced once
    assert importlib.import_module(LLAMA).apply_rotary_pos_emb is not own
    assert fused_rotary._originals[LLAMA] is own
    fused = loss_and_grads(model)

    # Then the loss and the adapter's gradients are the same
    assert_same_step(fused, plain)


@pytest.mark.usefixtures("unpatched")
def test_without_gradients_or_in_other_dtypes_the_module_computes_its_own() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    own = _own(LLAMA)
    config = LlamaConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    assert use_fused_rotary(LlamaForCausalLM(config))
    fused = importlib.import_module(LLAMA).apply_rotary_pos_emb
    assert fused is not own
    q, k, cos, sin = (t.detach() for t in _inputs())

    with torch.no_grad():  # evaluation and generation: what a server computes
        assert all(map(torch.equal, fused(q, k, cos, sin), own(q, k, cos, sin)))
    half = [t.bfloat16() for t in (q, k, cos, sin)]
    assert all(map(torch.equal, fused(*half), own(*half)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert all(map(torch.equal, fused(q, k, cos, sin), own(q, k, cos, sin)))


def test_a_model_of_another_module_keeps_its_own() -> None:
    assert not use_fused_rotary(torch.nn.Linear(4, 4))
