"""Attention rollout (Abnar & Zuidema 2020): one map from the attention maps of every layer.

Chapter 13 applies it to a small ViT; it works on the self-attention maps of any Transformer
encoder whose layers return their weights ``(L, B, H, S, S)``.
"""

from __future__ import annotations

import torch

__all__ = ["attention_rollout"]


def attention_rollout(weights: torch.Tensor, *, residual: float = 0.5) -> torch.Tensor:
    r"""Compose the attention maps of all layers into one map (Abnar & Zuidema 2020).

    Each layer's weights are averaged over the heads, the residual connection is accounted for
    as ``\hat A = (1 - residual) A + residual I`` (the paper's 0.5 / 0.5), rows are renormalised,
    and the layers are multiplied from the first to the last:
    ``rollout = \hat A_L \cdots \hat A_2 \hat A_1``. Row ``i`` then says how much of input token
    ``j`` flows into output token ``i`` through attention, under that linear approximation.

    Args:
        weights: the attention weights of ``L`` layers, first layer first.
        residual: the weight of the identity, in ``[0, 1)``; 0 gives the plain product.

    Returns:
        The rolled-out map; each row sums to 1.

    Shapes:
        weights ``(L, B, H, S, S)`` -> ``(B, S, S)``.

    Introduced in chapter 13 (vision transformers).
    """
    if not isinstance(weights, torch.Tensor) or weights.dim() != 5:
        got = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise ValueError(f"weights must be (L, B, H, S, S), one map per layer and head; got {got}")
    if weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"rollout needs self-attention maps (S x S), got {tuple(weights.shape)}")
    if not 0.0 <= residual < 1.0:
        raise ValueError(f"residual must be in [0, 1), got {residual}")
    S = weights.shape[-1]  # tokens
    eye = torch.eye(S, dtype=weights.dtype, device=weights.device)  # (S, S)
    rollout = eye.expand(weights.shape[1], S, S)  # (B, S, S): before any layer, identity
    for layer in weights:  # (B, H, S, S), first layer first
        a = (1.0 - residual) * layer.mean(dim=1) + residual * eye  # (B, H, S, S) -> (B, S, S)
        a = a / a.sum(dim=-1, keepdim=True)  # rows sum to 1 again
        rollout = a @ rollout  # this layer mixes what the earlier layers produced
    return rollout
