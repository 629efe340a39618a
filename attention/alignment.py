"""Read a translation's alignment from a Transformer's cross-attention (chapter 12)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ._validate import check_int

__all__ = ["cross_attention_alignment"]


def cross_attention_alignment(maps: Mapping[str, torch.Tensor], layer: int = -1) -> torch.Tensor:
    """Return, for every target position, the source position its cross-attention weighs most.

    Only cross-attention relates target positions (its queries) to source positions (its keys
    and values), so only it can hold an alignment; self-attention maps relate the positions of
    one sequence. The heads of the chosen decoder layer are averaged first.

    Args:
        maps: the attention maps of a teacher-forced pass, as ``Transformer.attention_maps``
            returns them; only ``maps["cross"]`` is read.
        layer: which decoder layer to read (default: the last one).

    Returns:
        The source index aligned with each target position.

    Shapes:
        maps["cross"] ``(N, B, H, T, S)`` -> ``(B, T)`` (long).

    Introduced in chapter 12 (attention in NLP tasks).
    """
    cross = maps.get("cross") if isinstance(maps, Mapping) else None
    if not isinstance(cross, torch.Tensor) or cross.dim() != 5:
        got = tuple(cross.shape) if isinstance(cross, torch.Tensor) else type(cross).__name__
        raise ValueError(
            f'maps["cross"] must be the cross-attention maps (N, B, H, T, S), got {got}'
        )
    check_int("layer", layer, minimum=None)
    N = cross.shape[0]  # decoder layers
    if not -N <= layer < N:
        raise ValueError(f"layer={layer} is out of range for {N} decoder layers")
    return cross[layer].mean(dim=1).argmax(dim=-1)  # (B, H, T, S) -> (B, T, S) -> (B, T)
