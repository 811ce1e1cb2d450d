"""A LoRA linear layer whose adapter is added inside the base layer's matrix products.

peft's LoRA layer computes `base(x) + lora_B(lora_A(dropout(x))) * scaling`: besides the
small adapter products, every call writes the adapter's (tokens x out_features) product,
multiplies it by the scaling and adds it to the base output, and its backward pass
multiplies and adds tensors of that size again, then adds the two gradients of the input.
On a CPU those passes over memory took three quarters of the base product's forward time
on the throughput bench's MLP projections. `FusedLoraLinear` computes the same values with
the adapter accumulated into the base product's output (`addmm_`, the scaling as its alpha)
and the input's two gradients accumulated the same way: one pass over each instead of
separate tensors written, scaled and added.

It is peft's own `lora.Linear` (same parameters, state dict, saving, merging), registered
with peft's custom-module hook for plain `torch.nn.Linear` layers, and falls back to peft's
forward for everything the fused product does not cover: disabled or merged adapters,
several active adapters, DoRA and other variants, a trainable bias, mixed dtypes or
autocast (16-bit GPU training), and quantized or otherwise subclassed weights.
"""

from __future__ import annotations

from typing import Any

import torch
from peft.tuners.lora import Linear as LoraLinear


class _AdaptedLinear(torch.autograd.Function):
    """y = x W^T + b + scaling * (x_lora A^T) B^T, with W and b frozen; x_lora is x when the
    adapter has no dropout (then x's two gradients are accumulated in one product)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        x_lora: torch.Tensor | None,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        lora_a: torch.Tensor,
        lora_b: torch.Tensor,
        scaling: float,
    ) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        lora_rows = rows if x_lora is None else x_lora.reshape(-1, x_lora.shape[-1])
        down = lora_rows @ lora_a.t()
        out = rows @ weight.t() if bias is None else torch.addmm(bias, rows, weight.t())
        out.addmm_(down, lora_b.t(), alpha=scaling)
        ctx.save_for_backward(lora_rows, down, weight, lora_a, lora_b)
        ctx.scaling = scaling
        ctx.shared_input = x_lora is None
        ctx.x_shape = x.shape  # x_lora's too: dropout keeps the shape
        return out.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        lora_rows, down, weight, lora_a, lora_b = ctx.saved_tensors
        grad = grad.reshape(-1, grad.shape[-1])
        grad_b = (grad.t() @ down).mul_(ctx.scaling)
        grad_down = (grad @ lora_b).mul_(ctx.scaling)
        grad_a = grad_down.t() @ lora_rows
        grad_x = grad_x_lora = None
        if ctx.shared_input:
            if ctx.needs_input_grad[0]:
                grad_x = (grad @ weight).addmm_(grad_down, lora_a).view(ctx.x_shape)
        else:
            if ctx.needs_input_grad[0]:
                grad_x = (grad @ weight).view(ctx.x_shape)
            if ctx.needs_input_grad[1]:
                grad_x_lora = (grad_down @ lora_a).view(ctx.x_shape)
        return grad_x, grad_x_lora, None, None, grad_a, grad_b, None


class FusedLoraLinear(LoraLinear):  # type: ignore[misc]
    """peft's LoRA linear layer with the fused product above when it applies."""

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        adapter = self._fusable_adapter(x, args, kwargs)
        if adapter is None:
            return super().forward(x, *args, **kwargs)  # type: ignore[no-any-return]
        dropout = self.lora_dropout[adapter]
        x_lora = None if isinstance(dropout, torch.nn.Identity) else dropout(x)
        base = self.base_layer
        result: torch.Tensor = _AdaptedLinear.apply(
            x,
            x_lora,
            base.weight,
            base.bias,
            self.lora_A[adapter].weight,
            self.lora_B[adapter].weight,
            self.scaling[adapter],
        )
        return result

    def _fusable_adapter(self, x: torch.Tensor, args: tuple[Any, ...], kwargs: Any) -> str | None:
        """The one active vanilla adapter the fused product can compute, or None."""
        if args or kwargs or self.disable_adapters or self.merged or self.fan_in_fan_out:
            return None
        adapters = [a for a in self.active_adapters if a in self.lora_A]
        if len(adapters) != 1 or adapters[0] in self.lora_variant:
            return None
        base = self.base_layer
        if type(base) is not torch.nn.Linear or torch.is_autocast_enabled(x.device.type):
            return None
        frozen = [base.weight] if base.bias is None else [base.weight, base.bias]
        if any(type(p) is not torch.nn.Parameter or p.requires_grad for p in frozen):
            return None
        tensors = [x, base.weight, self.lora_A[adapters[0]].weight, self.lora_B[adapters[0]].weight]
        if len({t.dtype for t in tensors}) != 1:
            return None
        return adapters[0]


def use_fused_lora(config: Any) -> Any:
    """The LoRA config, set to build `FusedLoraLinear` for plain linear layers."""
    config._register_custom_module({torch.nn.Linear: FusedLoraLinear})
    return config
