"""Checkers of ``attention.core`` (chapter 02): scaled dot-product attention, masked softmax."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..core import masked_softmax, scaled_dot_product_attention
from ..masks import causal_mask, padding_mask
from ._common import (
    _call,
    _Case,
    _close,
    _fail,
    _first_match,
    _generator,
    _randn,
    _random_mask,
    _tensor,
)


def _sdpa_cases(gen: torch.Generator) -> list[_Case]:
    """Shapes that catch transposes and broadcasting slips: T != S, Dv != Dk, extra batch dims."""
    T, S = 5, 9
    lengths = torch.randint(1, S, (2,), generator=gen)
    shapes = [  # description, q, k, v shapes, mask
        ("self-attention, q/k/v (2, 6, 8), no mask", (2, 6, 8), (2, 6, 8), (2, 6, 8), None),
        (
            "cross-attention, q (3, 4, 16), k (3, 7, 16), v (3, 7, 5), no mask",
            (3, 4, 16), (3, 7, 16), (3, 7, 5), None,
        ),
        (
            "q/k/v (2, 3, 6, 32) with a causal mask (6, 6)",
            (2, 3, 6, 32), (2, 3, 6, 32), (2, 3, 6, 32), causal_mask(6),
        ),
        (
            f"q (2, {T}, 16), k/v (2, {S}, 16)/(2, {S}, 12), padding mask (2, 1, {S}) "
            f"for lengths {lengths.tolist()}",
            (2, T, 16), (2, S, 16), (2, S, 12), padding_mask(lengths, S)[:, None, :],
        ),
        (
            "q/k/v (2, 4, 7, 24) with a random mask (2, 4, 7, 7)",
            (2, 4, 7, 24), (2, 4, 7, 24), (2, 4, 7, 24), _random_mask(gen, 2, 4, 7, 7),
        ),
    ]  # fmt: skip
    return [
        _Case(d, _randn(gen, *q, std=1.5), _randn(gen, *k, std=1.5), _randn(gen, *v), m)
        for d, q, k, v, m in shapes
    ]


def _sdpa_variant(
    case: _Case, *, scale: float | None = None, dim: int = -1, mask: str = "ok", softmax=True
) -> torch.Tensor:
    """The output of attention written with one deliberate, common mistake."""
    q, k, v, m = case.q, case.k, case.v, case.mask
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale
    if m is not None and mask in ("ok", "inverted"):
        keep = m if mask == "ok" else ~m
        scores = scores.masked_fill(~keep, float("-inf"))
    weights = torch.softmax(scores, dim=dim) if softmax else scores
    if m is not None and mask == "after_softmax":
        weights = weights * m
    return weights @ v


def _matches_inverted_mask(case: _Case, out: torch.Tensor) -> bool:
    """Whether ``out`` is attention with ``~mask`` on the rows that ``~mask`` leaves a key (the
    others are NaN with a -inf fill, finite but meaningless with -1e9)."""
    variant = _sdpa_variant(case, mask="inverted")
    rows = (~case.mask).any(dim=-1, keepdim=True)  # (..., T, 1): rows that keep a key
    return _close(torch.where(rows, out, 0.0), torch.where(rows, variant, 0.0))


_INVERTED = (
    "the mask polarity is inverted: True means 'may attend', so fill the scores where the mask "
    "is False (~mask), not where it is True"
)


def _diagnose_sdpa(case: _Case, out: torch.Tensor) -> str:
    dk = case.q.shape[-1]
    suspects = [
        ("the softmax runs over the wrong axis: it must normalise over the keys (dim=-1), so "
         "that each query's weights sum to 1", dict(dim=-2)),
        ("the scores are not scaled: multiply q @ k^T by 1/sqrt(Dk)", dict(scale=1.0)),
        ("the scores are scaled by 1/Dk; the right factor is 1/sqrt(Dk)", dict(scale=1.0 / dk)),
        ("the scores are multiplied by sqrt(Dk); divide by it instead", dict(scale=dk**0.5)),
        ("there is no softmax: the scores must be turned into weights with softmax(dim=-1)",
         dict(softmax=False)),
    ]  # fmt: skip
    if case.mask is not None:
        suspects += [
            ("the mask is ignored: fill the scores where mask is False with -inf before the "
             "softmax", dict(mask="ignored")),
            (_INVERTED, lambda: out if _matches_inverted_mask(case, out) else None),
            ("the weights are zeroed after the softmax, so rows no longer sum to 1: mask the "
             "scores with -inf before the softmax instead", dict(mask="after_softmax")),
        ]  # fmt: skip
    ref = _sdpa_variant(case)
    return _first_match(out, suspects, lambda **knobs: _sdpa_variant(case, **knobs)) or (
        f"the output differs from the reference by up to {(out - ref).abs().max():.3g}; "
        "check, in order: scores = q @ k.transpose(-2, -1) / sqrt(Dk), mask with -inf where "
        "mask is False, softmax over dim=-1, then weights @ v"
    )


def check_scaled_dot_product_attention(fn: Callable) -> None:
    """Check a learner's scaled dot-product attention on fresh random cases.

    Args:
        fn: called as ``fn(q, k, v)`` or ``fn(q, k, v, mask)`` with float64 tensors and a bool
            mask (True = may attend, broadcastable to ``(..., T, S)``). It returns ``out`` or
            ``(out, weights)``. Rows are never fully masked here.

    Shapes:
        q ``(..., T, Dk)``, k ``(..., S, Dk)``, v ``(..., S, Dv)`` -> out ``(..., T, Dv)``.

    Introduced in chapter 02 (exercise ex-02-sdpa).
    """
    name = "check_scaled_dot_product_attention"
    cases = _sdpa_cases(_generator())
    for case in cases:
        ref_out, ref_weights = scaled_dot_product_attention(case.q, case.k, case.v, case.mask)
        inputs = [t.clone() for t in (case.q, case.k, case.v, case.mask) if t is not None]
        result = _call(name, case.description, fn, *inputs)  # copies: in-place edits are harmless
        if isinstance(result, tuple | list) and len(result) != 2:
            raise _fail(
                name, case.description,
                f"your function returned a {type(result).__name__} of {len(result)} items; "
                "return out or (out, weights)",
            )  # fmt: skip
        out, weights = result if isinstance(result, tuple | list) else (result, None)
        hint = " (check that you multiply the weights by v and transpose k, not q)"
        if getattr(out, "shape", None) == ref_weights.shape:
            hint = " (that is the weights' shape: return weights @ v)"
        out = _tensor(name, case.description, out, ref_out.shape, f" = (..., T, Dv){hint}")
        if not torch.isfinite(out).all():
            msg = "the output contains NaN or inf"
            if case.mask is not None and _matches_inverted_mask(case, out):
                msg += f" because {_INVERTED}; inverted, a causal row is left with no key at all"
            raise _fail(name, case.description, msg)
        if not _close(out, ref_out):
            raise _fail(name, case.description, _diagnose_sdpa(case, out))
        if isinstance(weights, torch.Tensor) and not _close(weights, ref_weights):
            raise _fail(
                name, case.description,
                "the output is right but the returned weights are not: return the softmax "
                "weights (..., T, S) that multiply v",
            )  # fmt: skip
    print(
        f"{name}: all {len(cases)} random cases passed (batched, T != S, Dv != Dk, causal, "
        "padding and random masks)."
    )


def _diagnose_non_finite(got: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor) -> str:
    """Name the usual cause of NaN or inf in a learner's masked softmax."""
    if (~torch.isfinite(got).all(dim=-1) & ~mask.any(dim=-1)).any():
        return ("a row whose mask is all False gives NaN (softmax of all -inf): detect such rows "
                "with mask.any(dim=-1) and return zeros for them")  # fmt: skip
    if scores.abs().max() < 1e3:  # ordinary scores: no overflow possible
        return ("NaN although the scores are small: (~mask) * -inf gives 0 * -inf = NaN on the "
                "kept entries; use scores.masked_fill(~mask, float('-inf')) instead")  # fmt: skip
    return ("NaN or inf for large scores: exp overflows, or the kept entries underflow to 0 "
            "because the row maximum included masked entries; fill the masked scores with -inf "
            "first, then subtract each row's maximum (torch.softmax does)")  # fmt: skip


def _softmax_suspects(scores: torch.Tensor, mask: torch.Tensor, got: torch.Tensor) -> list:
    """The masked softmax's usual mistakes, as (diagnosis, the output it gives) pairs."""
    keep_sum = got.masked_fill(~mask, 0).sum(-1)
    return [
        ("the mask is ignored: masked entries must get weight 0", lambda: scores.softmax(-1)),
        ("the mask polarity is inverted: True means keep, False means weight 0",
         lambda: masked_softmax(scores, ~mask)),
        ("the softmax runs over dim=-2; it must normalise over the last dim (the keys)",
         lambda: masked_softmax(scores.mT, mask.mT).mT),
        ("a row's kept entries all got weight 0: the masked entries still competed in the "
         "softmax (a finite fill such as -1e4 is not below scores of 1e4, or the row maximum "
         "was taken over masked entries); fill the masked scores with -inf",
         lambda: got if ((keep_sum == 0) & mask.any(dim=-1)).any() else None),
        ("the weights are zeroed after the softmax, so rows no longer sum to 1: set the "
         "masked scores to -inf before the softmax", lambda: scores.softmax(-1) * mask),
        ("masked entries have non-zero weight: they must be exactly 0",
         lambda: got if (got.masked_fill(mask, 0) != 0).any() else None),
        ("rows with at least one kept entry must sum to 1 (and fully masked rows to 0)",
         lambda: None if _close(keep_sum, mask.any(-1).to(got.dtype)) else got),
    ]  # fmt: skip


def check_masked_softmax(fn: Callable) -> None:
    """Check a learner's masked softmax in three stages: ordinary scores with every row partly
    masked; float32 scores of ~1e4 (naive ``exp`` overflows); rows whose mask is all False.

    Args:
        fn: called as ``fn(scores, mask)``; softmax over the last dim, True = keep.

    Shapes:
        scores ``(..., T, S)``, mask ``(..., T, S)`` -> weights ``(..., T, S)``.

    Introduced in chapter 02 (exercise ex-02-masked-softmax).
    """
    name = "check_masked_softmax"
    gen = _generator()
    big = _randn(gen, 3, 5, 6).float() * 1e4
    big_mask = _random_mask(gen, 3, 5, 6)
    # One adversarial row: masked entries far above the kept ones. A finite fill such as -1e4,
    # or a maximum taken over masked entries too, then fails every time, not by chance.
    big[0, 0] = torch.where(big_mask[0, 0], -3e4 + big[0, 0] / 10, torch.tensor(1e4))
    fully = _random_mask(gen, 2, 6, 6)
    fully[0, 2] = fully[1, 0] = False
    stages = [
        (
            "ordinary scores (2, 4, 7), every row partly masked",
            _randn(gen, 2, 4, 7, std=2.0),
            _random_mask(gen, 2, 4, 7, cover_columns=True),
        ),
        ("float32 scores of size ~1e4 (3, 5, 6)", big, big_mask),
        ("scores (2, 6, 6) with two rows fully masked", _randn(gen, 2, 6, 6), fully),
    ]
    for stage, scores, mask in stages:
        got = _call(name, stage, fn, scores.clone(), mask.clone())
        ref = masked_softmax(scores, mask)
        if not isinstance(got, torch.Tensor) or got.shape != ref.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise _fail(name, stage, f"expected weights of shape {tuple(ref.shape)}, got {shape}")
        if not torch.isfinite(got).all():
            raise _fail(name, stage, _diagnose_non_finite(got, scores, mask))
        if _close(got, ref):
            continue
        suspects = _softmax_suspects(scores, mask, got)
        found = _first_match(got, suspects, None)
        gap = f"the weights differ from the reference by up to {(got - ref).abs().max():.3g}"
        raise _fail(name, stage, found or gap)
    print(
        f"{name}: all {len(stages)} stages passed (partial masks, float32 scores ~1e4, "
        "fully masked rows)."
    )
