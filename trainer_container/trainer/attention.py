"""Attention for packed rows without flash-attention: SDPA run on each example of the row.

A packed row holds several examples end to end, with position ids restarting at 0 at each
one. flash-attention's varlen kernel reads those boundaries directly; without it (CPUs, GPUs
without flash-attn), transformers' own answer is one SDPA call over the whole row with a
block-diagonal mask, which computes (and masks away) attention between every pair of
examples: for a batch of 8 examples of 512 tokens, 8 times the attention work of the
examples alone, plus a (tokens x tokens) mask. This implementation cuts the row at the
boundaries and runs causal SDPA on each example instead, so attention costs what the
examples need, and nothing is padded.

It is registered under `PACKED_SDPA` with transformers' `AttentionInterface` and chosen as
the model's attention implementation when the recipe packs. It has no mask function, so
transformers builds no mask for it: it accepts only packed rows with their position ids, and
refuses a batch of several rows, which may be padded, rather than attend to padding.
"""

from __future__ import annotations

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
