"""The training objective: token-level cross-entropy with padding left out, and label smoothing."""

from __future__ import annotations

import torch

from ._validate import check_int

__all__ = ["masked_cross_entropy"]


def _check_inputs(
    logits: torch.Tensor, targets: torch.Tensor, pad_id: int, label_smoothing: float
) -> None:
    """Raise ValueError naming the shapes or values that do not make a loss."""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.dim() < 2:
        got = (
            f"{logits.dtype} {tuple(logits.shape)}" if isinstance(logits, torch.Tensor) else logits
        )
        raise ValueError(f"logits must be a float tensor (..., V) with >= 2 dims, got {got}")
    if not isinstance(targets, torch.Tensor) or targets.dtype != torch.long:
        got = targets.dtype if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets must be a torch.long tensor of class ids, got {got}")
    if logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} do not match: "
            f"expected targets of shape {tuple(logits.shape[:-1])} (one id per position). If "
            "the model saw tokens[:, :-1], the targets are tokens[:, 1:] (shifted by one)"
        )
    check_int("pad_id", pad_id, minimum=None)
    if isinstance(label_smoothing, bool) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    keep = targets != pad_id
    if not keep.any():
        raise ValueError(
            f"every target is pad_id={pad_id}: the mean over non-pad tokens is undefined "
            f"(targets of shape {tuple(targets.shape)})"
        )
    V = logits.shape[-1]  # classes
    real = targets[keep]
    if real.min() < 0 or real.max() >= V:
        raise ValueError(
            f"non-pad targets must be class ids in [0, {V}), got values in "
            f"[{real.min().item()}, {real.max().item()}]"
        )


def masked_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    pad_id: int,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    r"""Average the token cross-entropy over the non-pad targets, with optional label smoothing.

    ``L = (1 / Σ_t m_t) Σ_t m_t ℓ_t`` with ``m_t = [y_t != pad_id]`` and
    ``ℓ_t = (1 - ε)(-log p_{y_t}) + ε · mean_v(-log p_v)``: label smoothing ([V] §5.4,
    ε = 0.1) mixes the one-hot target with a uniform distribution over **all** ``V`` classes.
    Equal to ``F.cross_entropy(logits.flatten(0, -2), targets.flatten(), ignore_index=pad_id,
    label_smoothing=ε)``. Pad positions get exactly zero loss and exactly zero gradient. This
    is what the article calls "Masked Softmax Loss": nothing is masked inside the softmax.

    Args:
        logits: unnormalised scores, classes in the last dim.
        targets: the class id each position must predict, already aligned with ``logits``
            (for a language model: ``logits = model(tokens[:, :-1])``, ``targets =
            tokens[:, 1:]``).
        pad_id: the id whose positions are left out of the loss and of the mean.
        label_smoothing: ε in ``[0, 1]``.

    Returns:
        A scalar tensor: the mean loss per non-pad token.

    Shapes:
        logits ``(..., V)``, e.g. ``(B, T, V)``; targets ``(...)``, e.g. ``(B, T)`` -> ``()``.

    Introduced in chapter 07 (the training objective).
    """
    _check_inputs(logits, targets, pad_id, label_smoothing)
    keep = targets != pad_id  # (...): True for the tokens that count
    log_probs = torch.log_softmax(logits, dim=-1)  # (..., V)
    safe = targets.masked_fill(~keep, 0)  # pad_id may be no valid class (e.g. -100)
    nll = -log_probs.gather(-1, safe[..., None]).squeeze(-1)  # (..., V) -> (...)
    loss = nll
    if label_smoothing > 0.0:
        uniform = -log_probs.mean(dim=-1)  # (..., V) -> (...): cross-entropy with 1/V each
        loss = (1.0 - label_smoothing) * nll + label_smoothing * uniform
    # where, not multiply: 0 * inf would be NaN, and the pads' gradient must be exactly 0
    loss = torch.where(keep, loss, 0.0)  # (...)
    return loss.sum() / keep.sum()  # mean over the non-pad tokens only
