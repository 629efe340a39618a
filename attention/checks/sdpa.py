"""Checkers for chapter 02: scaled dot-product attention and the masked softmax."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..core import masked_softmax, scaled_dot_product_attention
from ..masks import causal_mask, padding_mask
from ._common import _call, _Case, _close, _fail, _generator, _randn, _random_mask


def _sdpa_cases(gen: torch.Generator) -> list[_Case]:
    """Shapes that catch transposes and broadcasting slips: T != S, Dv != Dk, extra batch dims."""
    T, S = 5, 9
    lengths = torch.randint(1, S, (2,), generator=gen)
    return [
        _Case(
            "self-attention, q/k/v (2, 6, 8), no mask",
            _randn(gen, 2, 6, 8, std=1.5),
            _randn(gen, 2, 6, 8, std=1.5),
            _randn(gen, 2, 6, 8),
        ),
        _Case(
            "cross-attention, q (3, 4, 16), k (3, 7, 16), v (3, 7, 5), no mask",
            _randn(gen, 3, 4, 16, std=1.5),
            _randn(gen, 3, 7, 16, std=1.5),
            _randn(gen, 3, 7, 5),
        ),
        _Case(
            "q/k/v (2, 3, 6, 32) with a causal mask (6, 6)",
            _randn(gen, 2, 3, 6, 32, std=1.5),
            _randn(gen, 2, 3, 6, 32, std=1.5),
            _randn(gen, 2, 3, 6, 32),
            causal_mask(6),
        ),
        _Case(
            f"q (2, {T}, 16), k/v (2, {S}, 16)/(2, {S}, 12), padding mask (2, 1, {S}) "
            f"for lengths {lengths.tolist()}",
            _randn(gen, 2, T, 16, std=1.5),
            _randn(gen, 2, S, 16, std=1.5),
            _randn(gen, 2, S, 12),
            padding_mask(lengths, S)[:, None, :],
        ),
        _Case(
            "q/k/v (2, 4, 7, 24) with a random mask (2, 4, 7, 7)",
            _randn(gen, 2, 4, 7, 24, std=1.5),
            _randn(gen, 2, 4, 7, 24, std=1.5),
            _randn(gen, 2, 4, 7, 24),
            _random_mask(gen, 2, 4, 7, 7),
        ),
    ]


def _sdpa_variant(
    case: _Case,
    *,
    scale: float | None = None,
    dim: int = -1,
    mask: str = "ok",
    softmax: bool = True,
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
    """Whether ``out`` is attention with ``~mask``, on the rows that ``~mask`` leaves a key.

    Rows that the inverted mask empties are NaN with a -inf fill and finite but meaningless
    with -1e9, so they are left out of the comparison.
    """
    variant = _sdpa_variant(case, mask="inverted")
    rows = (~case.mask).any(dim=-1, keepdim=True)  # (..., T, 1): rows that keep a key
    return _close(torch.where(rows, out, 0.0), torch.where(rows, variant, 0.0))


def _diagnose_sdpa(case: _Case, out: torch.Tensor) -> str:
    dk = case.q.shape[-1]
    suspects = [
        (
            "the softmax runs over the wrong axis: it must normalise over the keys (dim=-1), so "
            "that each query's weights sum to 1",
            dict(dim=-2),
        ),
        ("the scores are not scaled: multiply q @ k^T by 1/sqrt(Dk)", dict(scale=1.0)),
        ("the scores are scaled by 1/Dk; the right factor is 1/sqrt(Dk)", dict(scale=1.0 / dk)),
        ("the scores are multiplied by sqrt(Dk); divide by it instead", dict(scale=math.sqrt(dk))),
        (
            "there is no softmax: the scores must be turned into weights with softmax(dim=-1)",
            dict(softmax=False),
        ),
    ]
    if case.mask is not None:
        suspects += [
            (
                "the mask is ignored: fill the scores where mask is False with -inf before the "
                "softmax",
                dict(mask="ignored"),
            ),
            (
                "the mask polarity is inverted: True means 'may attend', so fill the scores where "
                "the mask is False (~mask), not where it is True",
                dict(mask="inverted"),
            ),
            (
                "the weights are zeroed after the softmax, so rows no longer sum to 1: mask the "
                "scores with -inf before the softmax instead",
                dict(mask="after_softmax"),
            ),
        ]
    for message, knobs in suspects:
        if knobs.get("mask") == "inverted":
            if _matches_inverted_mask(case, out):
                return message
        elif _close(out, _sdpa_variant(case, **knobs)):
            return message
    ref = _sdpa_variant(case)
    return (
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

    Returns:
        None; prints one line when every case passes.

    Raises:
        AssertionError: naming the case and the likely mistake.

    Shapes:
        q ``(..., T, Dk)``, k ``(..., S, Dk)``, v ``(..., S, Dv)`` -> out ``(..., T, Dv)``.

    Introduced in chapter 02 (exercise ex-02-sdpa).
    """
    __tracebackhide__ = True  # show the learner the verdict, not the checker's frames
    name = "check_scaled_dot_product_attention"
    cases = _sdpa_cases(_generator())
    for case in cases:
        ref_out, ref_weights = scaled_dot_product_attention(case.q, case.k, case.v, case.mask)
        inputs = (case.q, case.k, case.v) + (() if case.mask is None else (case.mask,))
        # copies, so a learner who updates q in place is judged on the answer alone
        result = _call(name, case.description, fn, *(t.clone() for t in inputs))
        if isinstance(result, tuple | list) and len(result) != 2:
            raise _fail(
                name,
                case.description,
                f"your function returned a {type(result).__name__} of {len(result)} items; "
                "return out or (out, weights)",
            )
        out, weights = result if isinstance(result, tuple | list) else (result, None)
        if not isinstance(out, torch.Tensor):
            raise _fail(name, case.description, f"expected a tensor, got {type(out).__name__}")
        if out.shape != ref_out.shape:
            hint = ""
            if out.shape == ref_weights.shape:
                hint = " (that is the weights' shape: return weights @ v)"
            elif out.shape[-1] == case.k.shape[-2] or out.shape[-2] != ref_out.shape[-2]:
                hint = " (check that you multiply the weights by v and transpose k, not q)"
            raise _fail(
                name,
                case.description,
                f"wrong output shape {tuple(out.shape)}, expected "
                f"{tuple(ref_out.shape)} = (..., T, Dv){hint}",
            )
        if not torch.isfinite(out).all():
            msg = "the output contains NaN or inf"
            if case.mask is not None and _matches_inverted_mask(case, out):
                msg += (
                    " because the mask polarity is inverted: True means 'may attend', so fill "
                    "the scores where the mask is False (~mask); inverted, a causal row is "
                    "left with no key at all"
                )
            raise _fail(name, case.description, msg)
        if not _close(out, ref_out):
            raise _fail(name, case.description, _diagnose_sdpa(case, out))
        if isinstance(weights, torch.Tensor) and not _close(weights, ref_weights):
            raise _fail(
                name,
                case.description,
                "the output is right but the returned weights are "
                "not: return the softmax weights (..., T, S) that multiply v",
            )
    print(
        f"{name}: all {len(cases)} random cases passed (batched, T != S, Dv != Dk, causal, "
        "padding and random masks)."
    )


def _diagnose_non_finite(got: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor) -> str:
    """Name the usual cause of NaN or inf in a learner's masked softmax."""
    rows_bad = ~torch.isfinite(got).all(dim=-1)
    if (rows_bad & ~mask.any(dim=-1)).any():
        return (
            "a row whose mask is all False gives NaN (softmax of all -inf): detect such rows "
            "with mask.any(dim=-1) and return zeros for them"
        )
    if scores.abs().max() < 1e3:  # ordinary scores: no overflow possible
        return (
            "NaN although the scores are small: (~mask) * -inf gives 0 * -inf = NaN on the "
            "kept entries; use scores.masked_fill(~mask, float('-inf')) instead"
        )
    return (
        "NaN or inf for large scores: exp overflows, or the kept entries underflow to 0 "
        "because the row maximum included masked entries; fill the masked scores with -inf "
        "first, then subtract each row's maximum (torch.softmax does)"
    )


def check_masked_softmax(fn: Callable) -> None:
    """Check a learner's masked softmax on fresh random cases, including hard ones.

    The cases come in three stages: ordinary scores with every row partly masked; scores of
    size ~1e4 in float32 (naive ``exp`` overflows); rows whose mask is all False (must give 0s).

    Args:
        fn: called as ``fn(scores, mask)``; softmax over the last dim, True = keep.

    Returns:
        None; prints one line when every case passes.

    Raises:
        AssertionError: naming the stage and the likely mistake.

    Shapes:
        scores ``(..., T, S)``, mask ``(..., T, S)`` -> weights ``(..., T, S)``.

    Introduced in chapter 02 (exercise ex-02-masked-softmax).
    """
    __tracebackhide__ = True  # show the learner the verdict, not the checker's frames
    name = "check_masked_softmax"
    gen = _generator()
    big = _randn(gen, 3, 5, 6).float() * 1e4
    big_mask = _random_mask(gen, 3, 5, 6)
    # One adversarial row: masked entries far above the kept ones. A finite fill such as -1e4,
    # or a maximum taken over masked entries too, then fails every time, not by chance.
    big[0, 0] = torch.where(big_mask[0, 0], -3e4 + big[0, 0] / 10, torch.tensor(1e4))
    fully = _random_mask(gen, 2, 6, 6)
    fully[0, 2] = False
    fully[1, 0] = False
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
        keep_sum = got.masked_fill(~mask, 0).sum(-1)
        if _close(got, torch.softmax(scores, dim=-1)):
            msg = "the mask is ignored: masked entries must get weight 0"
        elif _close(got, masked_softmax(scores, ~mask)):
            msg = "the mask polarity is inverted: True means keep, False means weight 0"
        elif _close(
            got, masked_softmax(scores.transpose(-2, -1), mask.transpose(-2, -1)).transpose(-2, -1)
        ):
            msg = "the softmax runs over dim=-2; it must normalise over the last dim (the keys)"
        elif ((keep_sum == 0) & mask.any(dim=-1)).any():
            msg = (
                "a row's kept entries all got weight 0: the masked entries still competed in "
                "the softmax (a finite fill such as -1e4 is not below scores of 1e4, or the row "
                "maximum was taken over masked entries); fill the masked scores with -inf"
            )
        elif _close(got, torch.softmax(scores, dim=-1) * mask):
            msg = (
                "the weights are zeroed after the softmax, so rows no longer sum to 1: set the "
                "masked scores to -inf before the softmax"
            )
        elif (got.masked_fill(mask, 0) != 0).any():
            msg = "masked entries have non-zero weight: they must be exactly 0"
        elif not _close(keep_sum, mask.any(-1).to(got.dtype)):
            msg = "rows with at least one kept entry must sum to 1 (and fully masked rows to 0)"
        elif not _close(got, ref):
            msg = f"the weights differ from the reference by up to {(got - ref).abs().max():.3g}"
        else:
            continue
        raise _fail(name, stage, msg)
    print(
        f"{name}: all {len(stages)} stages passed (partial masks, float32 scores ~1e4, "
        "fully masked rows)."
    )
