"""Checker for chapter 03: the mask conventions of each library."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..masks import causal_mask, padding_mask
from ._common import _call, _close, _fail, _generator, _randn, _random_mask
from .multihead import _mha_case, _reference_module


def _diagnose_torch_mask(mask: torch.Tensor, got: object) -> str | None:
    """What is wrong with ``got`` as nn.MultiheadAttention's version of ``mask`` (None if ok)."""
    if not isinstance(got, torch.Tensor):
        return f"expected a tensor, got {type(got).__name__}"
    if got.shape != mask.shape:
        return f"expected the mask's shape {tuple(mask.shape)}, got {tuple(got.shape)}"
    if got.dtype == torch.bool:
        if torch.equal(got, mask):
            return (
                "the mask is not inverted: in nn.MultiheadAttention True means 'ignore', the "
                "opposite of ours, so return ~mask"
            )
        if not torch.equal(got, ~mask):
            return "the bool mask must be True exactly where ours is False (that is, ~mask)"
        return None
    if not got.is_floating_point():
        return (
            f"wrong dtype {got.dtype}: nn.MultiheadAttention takes a bool mask (True = ignore) or "
            "a float mask added to the scores (0 = attend, -inf = ignore), not integers"
        )
    if got.isnan().any():
        return "the float mask contains NaN"
    kept, dropped = got[mask], got[~mask]
    zero_one = ((kept == 1).all() and (dropped == 0).all()) or (
        (kept == 0).all() and (dropped == 1).all()
    )
    if zero_one:
        return (
            "a float mask of 0s and 1s is added to the scores, not read as True/False: use 0.0 "
            "where ours is True and -inf where it is False (or return the bool ~mask)"
        )
    if (dropped == 0).all() and (kept < 0).all():
        return (
            "the additive mask is inverted: 0 goes where ours is True (may attend) and -inf "
            "where it is False"
        )
    if (dropped > 0).any():
        return (
            "the additive mask has the wrong sign: masked scores need a large negative value "
            "(-inf); a positive one makes the masked keys more likely, not impossible"
        )
    if not (kept == 0).all():
        return "where ours is True the additive mask must be exactly 0 (it is added to the scores)"
    if (dropped > -1e9).any():
        return (
            f"masked entries of {dropped.max().item():g} are too weak: float32 logits of ~1e4 "
            "overpower them; use -inf (or torch.finfo(dtype).min)"
        )
    return None


def check_mask_conventions(fn: Callable) -> None:
    """Check a learner's conversion of our masks into ``nn.MultiheadAttention``'s convention.

    ``fn(mask)`` receives a bool mask, True = may attend (ours and
    ``F.scaled_dot_product_attention``), and returns what ``nn.MultiheadAttention`` expects:
    either a bool mask with True = ignore, or a float additive mask (0 = attend, ``-inf`` =
    ignore; a float result is cast to float64 here, the query's dtype). The same function
    serves for a ``(T, S)`` ``attn_mask`` and a ``(B, S)`` ``key_padding_mask``. The checker
    inspects the result, then runs ``nn.MultiheadAttention`` with it and requires the output of
    ``MultiHeadAttention`` with the original mask.

    Args:
        fn: the conversion to check.

    Returns:
        None; prints one line when every case passes.

    Raises:
        AssertionError: naming the case and the likely mistake (no inversion, a wrong dtype,
            0/1 floats, an inverted or positive additive mask, a fill too weak).

    Shapes:
        mask ``(T, S)`` or ``(B, S)`` -> the same shape.

    Introduced in chapter 03 (exercise ex-03-mask-conventions).
    """
    __tracebackhide__ = True  # show the learner the verdict, not the checker's frames
    name = "check_mask_conventions"
    gen = _generator()
    T, S, D, H = 5, 9, 16, 4
    lengths = torch.randint(1, S + 1, (3,), generator=gen)
    cases = [
        ("a causal mask (6, 6) as attn_mask", causal_mask(6), 2, 6, 6, "attn_mask"),
        (
            f"a random mask ({T}, {S}) as attn_mask (cross-attention)",
            _random_mask(gen, T, S),
            2,
            T,
            S,
            "attn_mask",
        ),
        (
            f"a padding mask (3, {S}) for lengths {lengths.tolist()} as key_padding_mask",
            padding_mask(lengths, S),
            3,
            T,
            S,
            "key_padding_mask",
        ),
    ]
    for description, mask, B, T_q, S_k, argument in cases:
        got = _call(name, description, fn, mask.clone())
        problem = _diagnose_torch_mask(mask, got)
        if problem is not None:
            raise _fail(name, description, problem)
        case = _mha_case(gen, description, B, T_q, D, H)
        ours = _reference_module(case)
        kv = _randn(gen, B, S_k, D)
        got = got if got.dtype == torch.bool else got.to(torch.float64)
        with torch.no_grad():
            with torch.random.fork_rng(devices=[]):  # nn.MultiheadAttention() draws weights
                torch_mha = ours.to_torch()
            theirs = torch_mha(case.x, kv, kv, need_weights=False, **{argument: got})[0]
            padding = argument == "key_padding_mask"
            ref = ours(case.x, kv, mask=mask[:, None, None, :] if padding else mask)[0]
        if not _close(theirs, ref):
            raise _fail(
                name,
                description,
                f"nn.MultiheadAttention with your mask differs from ours by up to "
                f"{(theirs - ref).abs().max():.3g}",
            )
    print(
        f"{name}: all {len(cases)} cases passed (causal and cross-attention attn_mask, "
        "key_padding_mask; nn.MultiheadAttention with your mask equals ours)."
    )
