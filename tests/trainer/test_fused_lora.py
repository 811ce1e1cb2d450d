"""The fused LoRA layer: peft's values and gradients, peft's files, peft's forward elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from peft.tuners.lora import Linear as LoraLinear
from trainer.fused_lora import FusedLoraLinear, use_fused_lora


def _model(model_dir: Path, *, fused: bool, dropout: float = 0.0) -> Any:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    base.config.use_cache = False
    # init_lora_weights=False: B is random too, so the adapter changes every output
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=dropout,
        target_modules="all-linear",
        init_lora_weights=False,
    )
    return get_peft_model(base, use_fused_lora(config) if fused else config)


def _batch() -> dict[str, torch.Tensor]:
    ids = torch.tensor([[5, 9, 13, 40, 77, 81, 90, 8, 3, 21], [30, 31, 32, 33, 34, 1, 2, 3, 4, 5]])
    return {"input_ids": ids, "labels": ids.clone()}


def _loss_and_grads(model: Any, seed: int = 0) -> tuple[float, dict[str, torch.Tensor]]:
    torch.manual_seed(seed)  # the same dropout masks in both models
    loss = model(**_batch()).loss
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
    return loss.item(), grads


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_fused_layer_gives_peft_loss_and_gradients(tiny_model_dir: Path, dropout: float) -> None:
    # Given the same LoRA model with peft's layers and with the fused ones, training
    plain = _model(tiny_model_dir, fused=False, dropout=dropout)
    fused = _model(tiny_model_dir, fused=True, dropout=dropout)
    assert any(isinstance(m, FusedLoraLinear) for m in fused.modules())
    assert not any(isinstance(m, FusedLoraLinear) for m in plain.modules())

    # When each computes the loss of one batch and its gradients
    plain_loss, plain_grads = _loss_and_grads(plain)
    fused_loss, fused_grads = _loss_and_grads(fused)

    # Then the loss and every adapter gradient are peft's
    assert fused_loss == pytest.approx(plain_loss, rel=1e-6)
    assert fused_grads.keys() == plain_grads.keys()
    for name, grad in plain_grads.items():
        torch.testing.assert_close(fused_grads[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_fused_layer_adds_the_adapter_to_a_base_layer_with_a_bias() -> None:
    # Given a fused LoRA layer on a linear layer with a frozen bias
    from peft import LoraConfig

    torch.manual_seed(0)
    base = torch.nn.Linear(12, 7, bias=True).requires_grad_(False)
    config = LoraConfig(r=3, lora_alpha=6, init_lora_weights=False)
    layer = FusedLoraLinear(base, "default", config=config, r=3, lora_alpha=6)
    x = torch.randn(2, 5, 12, requires_grad=True)

    # When it runs fused, and through peft's own forward
    fused_out = layer(x)
    (fused_grad,) = torch.autograd.grad(fused_out.sum(), x)
    peft_out = LoraLinear.forward(layer, x)
    (peft_grad,) = torch.autograd.grad(peft_out.sum(), x)

    # Then both give the same output and input gradient
    torch.testing.assert_close(fused_out, peft_out)
    torch.testing.assert_close(fused_grad, peft_grad)


def test_disabled_adapters_fall_back_to_the_base_model(tiny_model_dir: Path) -> None:
    # Given a fused LoRA model whose adapters change its logits
    fused = _model(tiny_model_dir, fused=True)
    ids = _batch()["input_ids"]
    with torch.no_grad():
        adapted = fused(input_ids=ids).logits
        # When its adapters are disabled (dpo's reference model)
        with fused.disable_adapter():
            base = fused(input_ids=ids).logits
        base_model = fused.get_base_model()

    # Then it answers as the base model does, and not as the adapted one
    assert not torch.allclose(adapted, base)
    with torch.no_grad(), fused.disable_adapter():
        torch.testing.assert_close(base_model(input_ids=ids).logits, base)


def test_saved_adapter_is_a_plain_peft_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    # Given a fused LoRA model, saved
    fused = _model(tiny_model_dir, fused=True)
    fused.save_pretrained(tmp_path / "adapter")

    # When plain peft loads it on the base model
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    loaded = PeftModel.from_pretrained(base, tmp_path / "adapter")

    # Then it holds peft's own layers and gives the fused model's logits
    assert not any(isinstance(m, FusedLoraLinear) for m in loaded.modules())
    ids = _batch()["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, fused(input_ids=ids).logits)
