"""A small training loop for the course's models, and exact-match accuracy."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable

import torch
from torch import nn

from ._validate import check_int
from .data import PAD_ID, Seq2SeqData
from .losses import masked_cross_entropy

__all__ = ["exact_match_accuracy", "train"]

Batch = Seq2SeqData | tuple[torch.Tensor, torch.Tensor]


def _default_loss(
    model: nn.Module, batch: Batch, pad_id: int, label_smoothing: float
) -> torch.Tensor:
    """Teacher-forced masked cross-entropy for a ``Seq2SeqData`` or an ``(inputs, targets)``."""
    if isinstance(batch, Seq2SeqData):
        logits = model(batch.src, batch.tgt_in)  # (B, T, V)
        return masked_cross_entropy(logits, batch.tgt_out, pad_id, label_smoothing)
    if isinstance(batch, tuple | list) and len(batch) == 2:
        inputs, targets = batch
        return masked_cross_entropy(model(inputs), targets, pad_id, label_smoothing)
    raise ValueError(
        f"a batch must be a Seq2SeqData or an (inputs, targets) pair, got {type(batch).__name__}; "
        "pass loss_fn=... for anything else"
    )


def _to(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, Seq2SeqData):
        return batch.to(device)
    if isinstance(batch, tuple | list):
        return tuple(t.to(device) if isinstance(t, torch.Tensor) else t for t in batch)
    return batch


def train(
    model: nn.Module,
    batches: Iterable[Batch],
    steps: int,
    lr: float = 1e-3,
    *,
    warmup_steps: int = 0,
    label_smoothing: float = 0.0,
    pad_id: int = PAD_ID,
    weight_decay: float = 0.0,
    grad_clip: float | None = 1.0,
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor] | None = None,
    progress: bool = True,
) -> list[float]:
    """Train ``model`` with AdamW for ``steps`` steps and return the loss of every step.

    The learning rate rises linearly over ``warmup_steps`` (the paper warms up too, §5.3), then
    follows a cosine down to 0 at the last step. Each batch is moved to the model's device.
    A ``Seq2SeqData`` batch is trained with teacher forcing, ``model(src, tgt_in)`` against
    ``tgt_out``; an ``(inputs, targets)`` pair with ``model(inputs)`` against ``targets``.
    The model is in training mode (dropout on) during the loop; its mode is restored after.

    Args:
        model: the model to train, in place.
        batches: an iterable of batches, restarted when it runs out (a list is reused each
            epoch; ``attention.data.iterate_batches`` never runs out).
        steps: number of optimiser steps.
        lr: peak learning rate.
        warmup_steps: steps of linear warm-up.
        label_smoothing: ε of the loss (the paper: 0.1).
        pad_id: target id left out of the loss.
        weight_decay: AdamW's decoupled weight decay.
        grad_clip: clip the gradients' global norm to this; None = no clipping.
        loss_fn: ``loss_fn(model, batch)`` -> scalar, instead of the default.
        progress: show a tqdm progress bar with the running loss.

    Returns:
        The training loss at each step, as Python floats.

    Shapes:
        (batches as above) -> ``len(history) == steps``.

    Introduced in chapter 06 (training a tiny Transformer).
    """
    check_int("steps", steps)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    check_int("warmup_steps", warmup_steps, minimum=0)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    device = params[0].device
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)

    def lr_factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        done = (step - warmup_steps) / max(1, steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * done))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    compute_loss = loss_fn or (lambda m, b: _default_loss(m, b, pad_id, label_smoothing))
    with warnings.catch_warnings():
        # Imported here, not at package import: in Jupyter without ipywidgets, tqdm.auto warns
        # "IProgress not found" on import and falls back to a text bar, which is all we need.
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    history: list[float] = []
    was_training, iterator = model.training, iter(batches)
    model.train()
    try:
        with tqdm(range(steps), disable=not progress, desc="training") as bar:
            for step in bar:
                try:
                    batch = next(iterator)
                except StopIteration:
                    iterator = iter(batches)
                    batch = next(iterator, None)
                    if batch is None:
                        raise ValueError(f"batches ran out after {step} steps") from None
                loss = compute_loss(model, _to(batch, device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, grad_clip)
                optimizer.step()
                scheduler.step()
                history.append(loss.item())
                if step % 10 == 0 or step == steps - 1:
                    bar.set_postfix(loss=f"{history[-1]:.3f}")
    finally:
        model.train(was_training)
    return history


def exact_match_accuracy(pred: torch.Tensor, target: torch.Tensor, pad_id: int = PAD_ID) -> float:
    """Return the fraction of rows whose predicted ids equal the target ids exactly.

    Both are compared after padding to one length with ``pad_id``, so a prediction matches
    only if it has the same tokens, the same EOS position and nothing after it but padding.

    Args:
        pred: predicted ids, e.g. from ``greedy_decode_seq2seq`` (``pad_id`` after EOS).
        target: reference ids, e.g. ``Seq2SeqData.tgt_out`` (``y EOS`` then padding).
        pad_id: the padding id.

    Returns:
        A float in ``[0, 1]``.

    Shapes:
        pred ``(B, T1)``, target ``(B, T2)`` -> float.

    Introduced in chapter 06 (training a tiny Transformer).
    """
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor) or t.dim() != 2:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a 2-D tensor of ids (B, T), got {got}")
    if pred.shape[0] != target.shape[0]:
        raise ValueError(
            f"pred {tuple(pred.shape)} and target {tuple(target.shape)} have different batch sizes"
        )
    T = max(pred.shape[1], target.shape[1])  # common length
    pred = nn.functional.pad(pred, (0, T - pred.shape[1]), value=pad_id)  # (B, T1) -> (B, T)
    target = nn.functional.pad(target.to(pred.device), (0, T - target.shape[1]), value=pad_id)
    return (pred == target).all(dim=1).float().mean().item()
