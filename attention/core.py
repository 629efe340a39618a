"""Scaled dot-product attention, the one function every chapter builds on."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._validate import check_bool_mask, check_mask_shape
from ._validate import check_sdpa_inputs as _check_inputs

__all__ = ["masked_softmax", "scaled_dot_product_attention"]


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Normalise scores over the last dim, giving masked entries exactly zero weight.

    Masked scores are set to ``-inf`` before the softmax, so the kept entries of each row still
    sum to 1. A row whose mask is all False gets all-zero weights, not NaN, and so does its
    gradient. ``torch.softmax`` subtracts each row's maximum, so scores of 1e4 stay finite.

    Args:
        scores: real-valued scores.
        mask: optional bool tensor broadcastable to ``scores``; True = keep (may attend).

    Returns:
        The weights, same shape as ``scores``.

    Shapes:
        scores ``(..., T, S)``, mask broadcastable to it -> ``(..., T, S)``.

    Introduced in chapter 02 (exercise ex-02-masked-softmax).
    """
    if mask is not None:
        check_bool_mask("mask", mask, "True = keep")
        check_mask_shape(mask, tuple(scores.shape), f"scores {tuple(scores.shape)}")
    return _masked_softmax(scores, mask)


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``masked_softmax`` without the checks, for callers that validated their inputs."""
    if mask is None:
        return torch.softmax(scores, dim=-1)
    scores = scores.masked_fill(~mask, float("-inf"))
    # A row with no kept entry would be softmax([-inf, ...]) = NaN. Give it finite scores here
    # and zero weights below, so neither the weights nor their gradient is NaN.
    has_key = mask.any(dim=-1, keepdim=True)  # (..., T, 1)
    weights = torch.softmax(scores.masked_fill(~has_key, 0.0), dim=-1)
    return weights.masked_fill(~has_key, 0.0)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    scale: float | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Attend from each query to every key and return the outputs and the weights.

    Computes ``softmax(q @ k^T * scale, dim=-1) @ v`` (Vaswani et al. 2017, eq. 1), with the
    scores of disallowed pairs set to ``-inf`` before the softmax. Rows whose mask is all False
    get all-zero weights and a zero output instead of NaN, so left padding with a causal mask
    is safe. The softmax subtracts each row's maximum, so large logits stay finite.

    Args:
        q: queries.
        k: keys.
        v: values.
        mask: optional bool tensor broadcastable to ``(..., T, S)``; **True = may attend**, the
            convention of ``torch.nn.functional.scaled_dot_product_attention``.
        scale: factor applied to the scores; defaults to ``1 / sqrt(Dk)``.
        dropout_p: probability of zeroing a weight (the weights are rescaled by ``1/(1-p)``);
            applied whenever it is > 0, as in PyTorch, so pass 0.0 at inference.

    Returns:
        ``(out, weights)``: the attended values and the attention weights.

    Shapes:
        q ``(..., T, Dk)``, k ``(..., S, Dk)``, v ``(..., S, Dv)``, mask ``(..., T, S)``
        (broadcastable) -> out ``(..., T, Dv)``, weights ``(..., T, S)``. Leading dims broadcast.

    Introduced in chapter 02 (scaled dot-product self-attention).
    """
    _check_inputs(q, k, v, mask)
    if scale is not None and not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number, got {scale}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    return _sdpa(q, k, v, mask, scale, dropout_p)


def _sdpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    scale: float | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``scaled_dot_product_attention`` without the checks, for callers that validated."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale  # (..., T, Dk) @ (..., Dk, S) -> (..., T, S)
    weights = _masked_softmax(scores, mask)  # (..., T, S), each row sums to 1 (or is all 0)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    out = weights @ v  # (..., T, S) @ (..., S, Dv) -> (..., T, Dv)
    return out, weights
