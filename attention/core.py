"""Scaled dot-product attention, the one function every chapter builds on."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["masked_softmax", "scaled_dot_product_attention"]


def _check_inputs(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> None:
    """Raise ValueError naming the shapes when q, k, v and mask cannot be attended together."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(
                f"{name} must have at least 2 dims (..., length, width), got shape {tuple(t.shape)}"
            )
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k and v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(
            f"q, k and v must be on one device, got {q.device}, {k.device}, {v.device}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same last dim Dk: q {tuple(q.shape)} vs k {tuple(k.shape)}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same length S (dim -2): "
            f"k {tuple(k.shape)} vs v {tuple(v.shape)}"
        )
    try:
        batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the leading (batch) dims of q {tuple(q.shape)}, k {tuple(k.shape)} and "
            f"v {tuple(v.shape)} do not broadcast"
        ) from None
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(
            f"mask must be a bool tensor (True = may attend), got {got}; "
            "convert a 0/1 mask with mask.bool() and an additive mask with mask == 0"
        )
    scores_shape = (*batch, q.shape[-2], k.shape[-2])
    try:
        ok = torch.broadcast_shapes(mask.shape, scores_shape) == torch.Size(scores_shape)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"{scores_shape} (..., T, S)"
        )
    if mask.device != q.device:
        raise ValueError(f"mask is on {mask.device} but q is on {q.device}")


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
    if mask is None:
        return torch.softmax(scores, dim=-1)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a bool tensor (True = keep), got {got}")
    try:
        torch.broadcast_to(mask, scores.shape)
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to scores {tuple(scores.shape)}"
        ) from None
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
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    elif not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number, got {scale}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")

    scores = q @ k.transpose(-2, -1) * scale  # (..., T, Dk) @ (..., Dk, S) -> (..., T, S)
    weights = masked_softmax(scores, mask)  # (..., T, S), each row sums to 1 (or is all 0)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    out = weights @ v  # (..., T, S) @ (..., S, Dv) -> (..., T, Dv)
    return out, weights
