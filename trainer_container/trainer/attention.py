"""Attention for packed rows without flash-attention: SDPA run on each example of the row.

A packed row holds several examples end to end, with position ids restarting at 0 at each
one. flash-attention's varlen kernel reads those boundaries directly; without it (CPUs, GPUs
without flash-attn), transformers' own answer is one SDPA call over the whole row with a
block-diagonal mask, which computes (and masks away) attention between every pair of
examples: for a batch of 8 examples of 512 tokens, 8 times the attention work of the
examples alone, plus a (tokens x tokens) mask. This implementation cuts the row at the
boundaries and runs causal SDPA on each example instead, so attention costs what the
examples need, and nothing is padded.

While training in float32 on a CPU, an example of CHUNKED_MIN_TOKENS or more goes through
`_ChunkedCausalAttention` instead of SDPA's flash kernel: matrix products over blocks of
queries, each against the keys up to its own end, with the probabilities kept for the
backward pass (bounded by CHUNKED_MAX_PROBABILITIES per example). On the throughput bench's
CPU, 1.3-1.5x faster than the flash kernel for examples of 384-512 tokens and 9-11% less time
per training step (docs/trainer.md, "Measured"); below 256 tokens the flash kernel is as
fast or faster.

It is registered under `PACKED_SDPA` with transformers' `AttentionInterface` and chosen as
the model's attention implementation when the recipe packs. It has no mask function, so
transformers builds no mask for it: it accepts only packed rows with their position ids, and
refuses a batch of several rows, which may be padded, rather than attend to padding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

PACKED_SDPA = "whetstone_packed_sdpa"


def sequence_starts(position_ids: torch.Tensor) -> list[int]:
    """Where each example of a packed row starts: every position id 0 (and 0 itself)."""
    starts = torch.nonzero(position_ids[0] == 0).flatten().tolist()
    return starts if starts and starts[0] == 0 else [0, *starts]


def _segment_mask(length: int, window: int | None, device: torch.device) -> torch.Tensor | None:
    """None for plain causal attention; a boolean causal mask limited to `window` otherwise."""
    if window is None or length <= window:
        return None
    rows = torch.arange(length, device=device)
    distance = rows[:, None] - rows[None, :]
    return (distance >= 0) & (distance < window)


CHUNK = 64  # queries per block of the chunked attention
CHUNKED_MIN_TOKENS = 256  # shorter examples: SDPA's flash kernel is as fast or faster
CHUNKED_MAX_PROBABILITIES = 1 << 22  # heads x tokens^2 of one example: 16 MiB in float32


class _ChunkedCausalAttention(torch.autograd.Function):
    """Causal attention of one example, in float32 on a CPU, as matrix products over blocks of
    CHUNK queries: each block's scores cover the keys up to its own end, so the products skip
    nearly all of the masked half, and the backward pass multiplies the probabilities the
    forward pass kept instead of recomputing them. q is (heads, tokens, dim), k and v are
    (kv_heads, tokens, dim); the query heads that share a key head go through each product
    together. Returns (tokens, heads, dim)."""

    @staticmethod
    def forward(
        ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float
    ) -> torch.Tensor:
        heads, tokens, dim = q.shape
        groups = k.shape[0]
        grouped = _by_group(q, groups)
        out = torch.empty(tokens, heads, dim, dtype=q.dtype, device=q.device)
        grouped_out = _by_group(out.permute(1, 0, 2), groups)
        probabilities = []
        for start, end, block in _blocks(grouped, tokens):
            scores = torch.bmm(block, k[:, :end].transpose(1, 2)).mul_(scale)
            diagonal = scores.view(groups, -1, end - start, end)[..., start:end]
            diagonal.add_(_causal_mask(end - start, q.device))
            weights = torch.softmax(scores, dim=-1)
            rows = grouped_out[:, :, start:end]
            rows.copy_(torch.bmm(weights, v[:, :end]).view_as(rows))
            probabilities.append(weights)
        ctx.save_for_backward(q, k, v, out, *probabilities)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v, out, *probabilities = ctx.saved_tensors
        tokens, groups = q.shape[1], k.shape[0]
        grouped = _by_group(q, groups)
        # the rows' sum of grad x out: softmax's backward, once for all blocks
        delta = _by_group((grad * out).sum(-1, keepdim=True).transpose(0, 1), groups)
        grad_grouped = _by_group(grad.permute(1, 0, 2), groups)
        grad_q = torch.empty_like(q)
        grad_q_grouped = _by_group(grad_q, groups)
        grad_k, grad_v = torch.zeros_like(k), torch.zeros_like(v)
        for (start, end, block), (_, _, grad_block), weights in zip(
            _blocks(grouped, tokens), _blocks(grad_grouped, tokens), probabilities, strict=True
        ):
            grad_v[:, :end].baddbmm_(weights.transpose(1, 2), grad_block)
            row_sums = delta[:, :, start:end].reshape(groups, -1, 1)
            grad_scores = torch.bmm(grad_block, v[:, :end].transpose(1, 2)).sub_(row_sums)
            grad_scores.mul_(weights)
            rows = grad_q_grouped[:, :, start:end]
            rows.copy_(torch.bmm(grad_scores, k[:, :end]).view_as(rows))
            grad_k[:, :end].baddbmm_(grad_scores.transpose(1, 2), block)
        return grad_q.mul_(ctx.scale), grad_k.mul_(ctx.scale), grad_v, None


def _by_group(x: torch.Tensor, groups: int) -> torch.Tensor:
    """A (heads, tokens, dim) tensor viewed as (groups, heads per group, tokens, dim)."""
    heads, tokens, dim = x.shape
    return x.view(groups, heads // groups, tokens, dim)


def _blocks(grouped: torch.Tensor, tokens: int) -> Iterator[tuple[int, int, torch.Tensor]]:
    """(start, end, the rows start:end of every head of a group as one (groups, rows, dim))."""
    groups, per_group, _, dim = grouped.shape
    for start in range(0, tokens, CHUNK):
        end = min(start + CHUNK, tokens)
        yield start, end, grouped[:, :, start:end].reshape(groups, per_group * (end - start), dim)


_CAUSAL_MASKS: dict[tuple[int, torch.device], torch.Tensor] = {}


def _causal_mask(size: int, device: torch.device) -> torch.Tensor:
    """-inf above the diagonal of a (size x size) block, 0 elsewhere."""
    key = (size, device)
    if key not in _CAUSAL_MASKS:
        _CAUSAL_MASKS[key] = torch.full((size, size), float("-inf"), device=device).triu_(1)
    return _CAUSAL_MASKS[key]


def _chunked_applies(q: torch.Tensor, k: torch.Tensor, window: int | None, dropout: float) -> bool:
    """Where the chunked attention is measured faster and its kept probabilities stay small:
    training in float32 on a CPU, examples of CHUNKED_MIN_TOKENS or more, no window inside
    the example, no dropout."""
    heads, tokens = q.shape[1], q.shape[2]
    return (
        q.device.type == "cpu"
        and q.dtype == k.dtype == torch.float32
        and torch.is_grad_enabled()
        and q.requires_grad
        and dropout == 0.0
        and (window is None or tokens <= window)
        and CHUNKED_MIN_TOKENS <= tokens
        and heads * tokens * tokens <= CHUNKED_MAX_PROBABILITIES
        and heads % k.shape[1] == 0
    )


def packed_sdpa_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Causal attention per example of a packed (1, heads, tokens, dim) row.

    Returns (1, tokens, heads, dim) like transformers' other attention functions.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if kwargs.get("softcap") is not None or kwargs.get("s_aux") is not None:
        raise ValueError(f"{PACKED_SDPA} supports neither logit softcapping nor attention sinks")
    if query.shape[0] != 1 or attention_mask is not None:
        raise ValueError(
            f"{PACKED_SDPA} takes packed rows (batch of one, no padding mask); "
            "use batching 'length_grouped' or 'padded' with padded batches"
        )
    position_ids = kwargs.get("position_ids")
    if position_ids is None:  # a model that does not hand them to its attention function
        raise ValueError(f"{PACKED_SDPA} needs the position ids to find the examples of a row")
    window = kwargs.get("sliding_window")
    length = query.shape[2]
    starts = sequence_starts(position_ids)
    # One split per tensor rather than a slice per example: the backward of a split is one
    # concatenation, where each slice's would fill a zero tensor of the whole row's size.
    lengths = [end - start for start, end in zip(starts, [*starts[1:], length], strict=True)]
    outputs = []
    for q, k, v in zip(
        query.split(lengths, dim=2),
        key.split(lengths, dim=2),
        value.split(lengths, dim=2),
        strict=True,
    ):
        if _chunked_applies(q, k, window, dropout):
            scale = q.shape[-1] ** -0.5 if scaling is None else scaling
            outputs.append(_ChunkedCausalAttention.apply(q[0], k[0], v[0], scale).unsqueeze(0))
            continue
        out, _ = sdpa_attention_forward(
            module,
            q,
            k,
            v,
            _segment_mask(q.shape[2], window, query.device),
            dropout=dropout,
            scaling=scaling,
            is_causal=True,
        )
        outputs.append(out)
    return torch.cat(outputs, dim=1), None


def register_packed_attention() -> str:
    """Make `PACKED_SDPA` a valid `attn_implementation`; returns its name."""
    from transformers import AttentionInterface

    AttentionInterface.register(PACKED_SDPA, packed_sdpa_attention)
    return PACKED_SDPA
