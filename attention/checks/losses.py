"""Checker of ``attention.losses`` (chapter 07): the masked cross-entropy, label smoothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..losses import masked_cross_entropy
from ._common import _call, _close, _fail, _generator, _randint, _randn


@dataclass
class _LossCase:
    """One random case: logits, targets (or tokens to shift), the pad id and ε."""

    description: str
    logits: torch.Tensor
    targets: torch.Tensor
    pad_id: int
    eps: float


def _loss_case(gen: torch.Generator, B, T, V, pad_id: int, eps: float, lengths=None) -> _LossCase:
    """Right-padded targets of distinct lengths >= 1; real targets never equal ``pad_id``.
    Fixed ``lengths`` keep a description the same on every run (a notebook stores one)."""
    lengths = torch.randperm(T, generator=gen)[:B] + 1 if lengths is None else torch.tensor(lengths)
    real = torch.randint(0, V - 1, (B, T), generator=gen)
    real = real + (real >= pad_id).long()  # every class but pad_id
    targets = real.masked_fill(torch.arange(T) >= lengths[:, None], pad_id)  # (B, T)
    if pad_id != 0:
        targets[0, 0] = 0  # a real class-0 target, so that a hard-coded pad id of 0 shows
    desc = f"logits ({B}, {T}, {V}), pad_id={pad_id}, label_smoothing={eps}, lengths "
    desc += str(lengths.tolist())
    return _LossCase(desc, _randn(gen, B, T, V, std=2.0), targets, pad_id, eps)


def _variant(
    logits: torch.Tensor,
    targets: torch.Tensor,
    pad_id: int,
    eps: float,
    *,
    mean: str = "tokens",
    pads_in_loss: bool = False,
    smooth: str = "all",
    smooth_at_pads: bool = False,
    mask_id: int | None = None,
    log_probs: str = "ok",
) -> torch.Tensor:
    """The loss written with one deliberate, common mistake (defaults: the right loss)."""
    keep = targets != (pad_id if mask_id is None else mask_id)  # (B, T)
    V = logits.shape[-1]
    if log_probs == "ok":
        lp = torch.log_softmax(logits, dim=-1)
    elif log_probs == "dim1":
        lp = torch.log_softmax(logits, dim=1)
    else:  # "raw": the logits used as if they were log-probabilities
        lp = logits
    nll = -lp.gather(-1, targets.clamp(0, V - 1)[..., None]).squeeze(-1)  # (B, T)
    if smooth == "all":  # uniform over all V classes, as F.cross_entropy
        uniform = -lp.mean(-1)
    elif smooth == "no_pad_class":  # Annotated Transformer: ε over V - 2 classes
        others = torch.ones_like(lp).scatter(-1, targets.clamp(0, V - 1)[..., None], 0.0)
        others[..., pad_id] = 0.0
        uniform = -(lp * others).sum(-1) / (V - 2)
    elif smooth == "wrong_classes":  # ε over the V - 1 wrong classes
        others = torch.ones_like(lp).scatter(-1, targets.clamp(0, V - 1)[..., None], 0.0)
        uniform = -(lp * others).sum(-1) / (V - 1)
    else:  # "off"
        uniform = nll
    if smooth == "swapped":
        per_token = eps * nll + (1 - eps) * (-lp.mean(-1))
    else:
        per_token = (1 - eps) * nll + eps * uniform
    counted = torch.ones_like(keep) if pads_in_loss else keep
    loss = torch.where(counted, per_token, 0.0)
    if smooth_at_pads:  # the smoothing term also summed over the pad positions
        loss = torch.where(counted, (1 - eps) * nll, 0.0) + eps * uniform
    if mean == "tokens":
        return loss.sum() / counted.sum()
    if mean == "all":
        return loss.sum() / keep.numel()
    if mean == "sum":
        return loss.sum()
    return (loss.sum(1) / counted.sum(1)).mean()  # "sequences": mean of per-sequence means


def _diagnose(case: _LossCase, got: torch.Tensor, shift: bool) -> str:
    logits, targets, pad, eps = case.logits, case.targets, case.pad_id, case.eps
    if shift:
        if _close(got, _variant(logits, targets, pad, eps)):
            return ("you forgot to shift the targets: logits[:, t] predicts the NEXT token, so "
                    "compare logits[:, :-1] with tokens[:, 1:]")  # fmt: skip
        if _close(got, _variant(logits[:, 1:], targets[:, :-1], pad, eps)):
            return "you shifted the wrong way: compare logits[:, :-1] with tokens[:, 1:]"
        logits, targets = logits[:, :-1], targets[:, 1:]
    elif _close(got, _variant(logits[:, :-1], targets[:, 1:], pad, eps)):
        return ("you shifted the targets, but they are already aligned: logits[:, t] must be "
                "scored against targets[:, t] here")  # fmt: skip
    suspects = [
        ("averaging over pads: pad positions are in the loss and in the mean; leave every "
         "position whose target is pad_id out of both", dict(pads_in_loss=True)),
        ("the pads' loss is zeroed but the mean divides by all B*T positions: divide by the "
         "number of non-pad targets, (targets != pad_id).sum()", dict(mean="all")),
        ("sum instead of mean: divide the summed loss by the number of non-pad targets",
         dict(mean="sum")),
        ("you averaged each sequence, then the sequences: that weights the tokens of short "
         "sequences more; divide the total by the number of non-pad tokens in the batch",
         dict(mean="sequences")),
        (f"the pad id is hard-coded as 0, but this case uses pad_id={pad}: use the argument",
         dict(mask_id=0)),
        ("the softmax must run over the classes (the last dim), not over the positions",
         dict(log_probs="dim1")),
        ("the logits are used as log-probabilities: take torch.log_softmax(logits, dim=-1)",
         dict(log_probs="raw")),
    ]  # fmt: skip
    if eps > 0:
        suspects += [
            ("label_smoothing is ignored: mix (1-ε)·(-log p_y) with ε·mean_v(-log p_v)",
             dict(smooth="off")),
            ("the two terms are swapped: (1-ε) weighs -log p_y and ε the uniform term",
             dict(smooth="swapped")),
            ("smoothing over the pad positions: the ε·mean_v(-log p_v) term is added at pad "
             "positions too; pads must contribute nothing at all", dict(smooth_at_pads=True)),
            ("you left the pad class out of the smoothing (as the Annotated Transformer "
             "does); F.cross_entropy spreads ε over all V classes: ε·mean_v(-log p_v)",
             dict(smooth="no_pad_class")),
            ("you spread ε over the V-1 wrong classes; F.cross_entropy spreads it over all "
             "V classes: ε·mean_v(-log p_v)", dict(smooth="wrong_classes")),
        ]  # fmt: skip
    ref = _variant(logits, targets, pad, eps)
    matches = []  # (distance, message) of the mistakes that reproduce the learner's value
    for message, knobs in suspects:
        variant = _variant(logits, targets, pad, eps, **knobs)
        if not _close(variant, ref) and _close(got, variant):
            matches.append(((got - variant).abs().item(), message))
    if matches:
        return min(matches)[1]  # the closest, in case two mistakes give similar values
    return (
        f"the loss is {got.item():.6g}, expected {ref.item():.6g}; check, in order: "
        "log_softmax over the last dim, -log p of each target, (1-ε)·that + ε·mean over all "
        "classes, zero at pad targets, then divide by the number of non-pad targets"
    )


def check_masked_cross_entropy(fn: Callable, *, shift: bool = False) -> None:
    """Check a learner's masked cross-entropy (padding excluded, label smoothing) on fresh cases.

    Args:
        fn: called as ``fn(logits, targets, pad_id, label_smoothing)`` with float64 logits
            and right-padded ``torch.long`` targets; returns the scalar mean loss over the
            non-pad targets, as ``F.cross_entropy(..., ignore_index=pad_id,
            label_smoothing=...)``. With ``shift=True`` it is given ``(logits, tokens, ...)``
            where ``logits[:, t]`` predicts ``tokens[:, t + 1]``, and must shift itself.
        shift: whether ``fn`` must align the logits with the next tokens (keyword only).

    Shapes:
        logits ``(B, T, V)``, targets ``(B, T)`` -> ``()``.

    Introduced in chapter 07 (exercise ex-07-masked-loss).
    """
    name = "check_masked_cross_entropy"
    gen = _generator()
    V = 7 + _randint(gen, 0, 6)
    odd_pad = 1 + _randint(gen, 0, V - 1)  # a pad id that is not 0
    cases = [
        _loss_case(gen, 3, 6, 10, 0, 0.0, lengths=[6, 3, 1]),  # the same description every run
        _loss_case(gen, 4, 7, V, odd_pad, 0.0),
        _loss_case(gen, 3, 8, V + 2, 0, 0.1),
        _loss_case(gen, 2, 5, V, odd_pad, 0.25),
    ]
    for case in cases:
        logits = case.logits.clone().requires_grad_(True)
        aligned = (
            (case.logits[:, :-1], case.targets[:, 1:]) if shift else (case.logits, case.targets)
        )
        ref = masked_cross_entropy(*aligned, case.pad_id, case.eps)
        got = _call(name, case.description, fn, logits, case.targets.clone(), case.pad_id, case.eps)
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            what = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise _fail(name, case.description, f"expected a scalar tensor, got {what}")
        got = got.reshape(())
        if not torch.isfinite(got):
            raise _fail(name, case.description, f"the loss is {got.item()}: a pad id used as a "
                        "class index, or 0 * inf from multiplying -inf log-probabilities by a 0/1 "
                        "mask (use masked_fill/where)")  # fmt: skip
        if not _close(got, ref):
            raise _fail(name, case.description, _diagnose(case, got.detach(), shift))
        if got.grad_fn is None:
            raise _fail(name, case.description, "the loss is not connected to the logits (no "
                        ".item(), numpy or torch.no_grad): a model could not be trained with "
                        "it")  # fmt: skip
        got.backward()
        pads = case.targets == case.pad_id
        pads = pads[:, 1:] if shift else pads
        grad = logits.grad[:, :-1] if shift else logits.grad
        if (grad[pads] != 0).any():
            raise _fail(name, case.description, "the value is right but pad positions get a "
                        "gradient: mask them out of the loss (torch.where or masked_fill) so that "
                        "pads do not train the model")  # fmt: skip
    print(
        f"{name}: all {len(cases)} random cases passed (pad id 0 and a random non-zero one, "
        "label smoothing 0, 0.1 and 0.25, uneven lengths, zero gradient at pads)."
    )
