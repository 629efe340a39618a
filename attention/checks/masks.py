"""Checkers of ``attention.masks`` (chapter 03): the conventions of each library, and the
decoder's mask built from a Hugging Face ``attention_mask``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..masks import causal_mask, padding_mask
from ._common import CheckFailed, _call, _close, _fail, _generator, _randn, _random_mask
from .multihead import _mha_case, _reference_module


def _diagnose_torch_mask(mask: torch.Tensor, got: object) -> str | None:
    """What is wrong with ``got`` as nn.MultiheadAttention's version of ``mask`` (None if ok)."""
    if not isinstance(got, torch.Tensor):
        return f"expected a tensor, got {type(got).__name__}"
    if got.shape != mask.shape:
        return f"expected the mask's shape {tuple(mask.shape)}, got {tuple(got.shape)}"
    if got.dtype == torch.bool:
        if torch.equal(got, mask):
            return ("the mask is not inverted: in nn.MultiheadAttention True means 'ignore', the "
                    "opposite of ours, so return ~mask")  # fmt: skip
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
    zero_one = (kept == 1).all() and (dropped == 0).all()
    zero_one = zero_one or ((kept == 0).all() and (dropped == 1).all())
    problems = [  # (whether it applies, diagnosis), the first that applies is named
        (zero_one,
         "a float mask of 0s and 1s is added to the scores, not read as True/False: use 0.0 "
         "where ours is True and -inf where it is False (or return the bool ~mask)"),
        ((dropped == 0).all() and (kept < 0).all(), "the additive mask is inverted: 0 goes where "
         "ours is True (may attend) and -inf where it is False"),
        ((dropped > 0).any(), "the additive mask has the wrong sign: masked scores need a large "
         "negative value (-inf); a positive one makes the masked keys more likely, not impossible"),
        (not (kept == 0).all(),
         "where ours is True the additive mask must be exactly 0 (it is added to the scores)"),
        # -1e8, -1e9 and finfo.min stay far out of the logits' reach
        ((dropped > -1e5).any(), f"a fill of {dropped.max().item():g} is within reach of real "
         "logits; use -inf, <= -1e9 or torch.finfo(dtype).min"),
    ]  # fmt: skip
    return next((message for applies, message in problems if applies), None)


def check_mask_conventions(fn: Callable) -> None:
    """Check a learner's conversion of our masks into ``nn.MultiheadAttention``'s convention.

    Args:
        fn: ``fn(mask)`` gets a bool mask, True = may attend (ours and ``F.sdpa``'s), and
            returns what ``nn.MultiheadAttention`` expects: a bool mask with True = ignore, or a
            float additive mask (0 = attend, ``-inf`` = ignore; cast to float64 here, the
            query's dtype), for a ``(T, S)`` ``attn_mask`` and a ``(B, S)`` ``key_padding_mask``
            alike. ``nn.MultiheadAttention`` with it must equal ours with the original mask.

    Shapes:
        mask ``(T, S)`` or ``(B, S)`` -> the same shape.

    Introduced in chapter 03 (exercise ex-03-mask-conventions).
    """
    name = "check_mask_conventions"
    gen = _generator()
    T, S, D, H = 5, 9, 16, 4
    lengths = torch.randint(1, S + 1, (3,), generator=gen)
    cases = [
        ("a causal mask (6, 6) as attn_mask", causal_mask(6), 2, 6, 6, "attn_mask"),
        (f"a random mask ({T}, {S}) as attn_mask (cross-attention)", _random_mask(gen, T, S), 2,
         T, S, "attn_mask"),
        (f"a padding mask (3, {S}) for lengths {lengths.tolist()} as key_padding_mask",
         padding_mask(lengths, S), 3, T, S, "key_padding_mask"),
    ]  # fmt: skip
    for description, mask, B, T_q, S_k, argument in cases:
        got = _call(name, description, fn, mask.clone())
        problem = _diagnose_torch_mask(mask, got)
        if problem is not None:
            raise _fail(name, description, problem)
        case = _mha_case(gen, description, B, T_q, D, H)
        ours = _reference_module(case)
        kv = _randn(gen, B, S_k, D)
        got = got if got.dtype == torch.bool else got.to(torch.float64)
        with torch.no_grad(), torch.random.fork_rng(devices=[]):  # to_torch() draws weights
            theirs = ours.to_torch()(case.x, kv, kv, need_weights=False, **{argument: got})[0]
            padding = argument == "key_padding_mask"
            ref = ours(case.x, kv, mask=mask[:, None, None, :] if padding else mask)[0]
        if not _close(theirs, ref):
            gap = f"{(theirs - ref).abs().max():.3g}"
            raise _fail(name, description, f"nn.MultiheadAttention with your mask differs from "
                        f"ours by up to {gap}")  # fmt: skip
    print(
        f"{name}: all {len(cases)} cases passed (causal and cross-attention attn_mask, "
        "key_padding_mask; nn.MultiheadAttention with your mask equals ours)."
    )


def _decoder_cases(gen: torch.Generator) -> list[tuple[str, torch.Tensor]]:
    """Right-padded batches (B != T and B == T) and a left-padded one with fully masked rows,
    with fixed descriptions (a notebook stores one); the lengths go with the diagnosis."""

    def lengths(B: int, T: int, shortest: int) -> torch.Tensor:
        n = torch.randint(1, T + 1, (B,), generator=gen)
        n[torch.randint(0, B, (1,), generator=gen)] = shortest  # padding in every case
        return n

    right_a, right_b, left = lengths(3, 8, 5), lengths(6, 6, 3), lengths(4, 7, 2)
    return [
        ("a right-padded batch (3, 8)", padding_mask(right_a, 8)),
        ("a right-padded batch (6, 6)", padding_mask(right_b, 6)),
        ("a left-padded batch (4, 7), whose first queries have no real key",
         padding_mask(left, 7).flip(-1)),
    ]  # fmt: skip


def _decoder_variants(keep: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Usual mistakes, each as the (B, 1, T, T) mask it produces, with its diagnosis."""
    B, T = keep.shape  # batch, tokens
    ones = torch.ones(T, T, dtype=torch.bool)
    causal, keys = ones.tril(), keep[:, None, None, :]  # (T, T), (B, 1, 1, T)
    queries = keep[:, None, :, None]  # (B, 1, T, 1)
    right = padding_mask(keep.sum(-1), T)[:, None, None, :]  # padding assumed on the right
    ref = causal & keys
    return [
        ("the mask is inverted (True = ignore is nn.MultiheadAttention's convention): here "
         "True must mean 'may attend', as in F.scaled_dot_product_attention", ~ref),
        ("the causal and padding masks are combined with OR: a pair may attend only if both "
         "allow it, so combine them with &", causal | keys),
        ("the padding is not masked: AND the causal mask with the attention_mask over the keys, "
         "attention_mask[:, None, None, :] == 1", causal.expand(B, 1, T, T)),
        ("the causal mask is missing: query i may attend only to keys j <= i (a lower "
         "triangle, torch.ones(T, T).tril())", keys.expand(B, 1, T, T)),
        ("the causal mask points the wrong way: keep keys j <= i (tril), not j >= i (triu)",
         ones.triu() & keys),
        ("the diagonal is masked: a token may attend to itself, so use tril() (keys j <= i), "
         "not tril(-1)", ones.tril(-1) & keys),
        ("the pad queries' rows are masked as well as the pad keys: mask the keys (columns) "
         "only, attention_mask[:, None, None, :]; emptying a row leaves that query no key at "
         "all (NaN in a naive softmax)", ref & queries),
        ("the padding mask is applied to the queries (rows) instead of the keys (columns): "
         "use attention_mask[:, None, None, :], so that no query looks at a pad key",
         causal & queries),
        ("the padding is assumed to be on the right (a mask built from the lengths): read the "
         "pad positions from attention_mask itself, since a left-padded batch has its 0s first",
         causal & right),
    ]  # fmt: skip


def _diagnose_decoder_mask(keep: torch.Tensor, got: object) -> str | None:
    """What is wrong with ``got`` as the decoder mask of ``keep`` (None if it is right)."""
    B, T = keep.shape  # batch, tokens
    full = (B, 1, T, T)
    if not isinstance(got, torch.Tensor):
        return f"expected a tensor, got {type(got).__name__}"
    if got.dtype != torch.bool:
        additive = got.is_floating_point() and (got[got != 0] == float("-inf")).all()
        kind = "an additive float mask (0 / -inf)" if additive else f"a {got.dtype} tensor"
        return (
            f"expected a bool mask (True = may attend), got {kind}; build it from booleans, e.g. "
            "attention_mask == 1 and torch.ones(T, T, dtype=torch.bool).tril()"
        )
    if got.dim() != 4:
        shape = tuple(got.shape)
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        # With B == T, (T, T) & (B, T) broadcasts silently and pairs sequence b with query b.
        broadcast = shape == (T, T) and B == T and torch.equal(got.cpu(), causal & keep)
        problems = [
            (broadcast, f"the mask has shape {shape}, not {full}: the (B, T) padding mask was "
             "broadcast against the (T, T) causal mask, which pairs sequence b with query b; "
             "reshape it to (B, 1, 1, T) first"),
            (shape == (T, T), f"the mask has shape {shape}, the same for every sequence: combine "
             f"it with each sequence's padding, attention_mask[:, None, None, :], to get {full}"),
            (shape == (B, T, T), f"the mask has shape {shape}; add the head dim, mask[:, None] -> "
             f"{full}, so that it broadcasts over the heads of (B, H, T, S) scores rather than "
             "against them"),
            (True, f"expected a mask of shape {full} (B, 1, T, S), got {shape}"),
        ]  # fmt: skip
        return next(message for applies, message in problems if applies)
    try:
        got = got.expand(full)
    except RuntimeError:
        return f"expected a mask of shape {full} (B, 1, T, S), got {tuple(got.shape)}"
    got = got.cpu()
    variants = _decoder_variants(keep)
    ref = torch.ones(T, T, dtype=torch.bool).tril() & keep[:, None, None, :]
    if torch.equal(got, ref):
        return None
    for message, variant in variants:
        if torch.equal(got, variant):
            return message
    wrong = (got != ref).nonzero()
    b, _, i, j = wrong[0].tolist()
    return (
        f"{len(wrong)} of {got.numel()} entries differ from causal & padding, e.g. sequence {b}, "
        f"query {i}, key {j}: expected {bool(ref[b, 0, i, j])}, got {bool(got[b, 0, i, j])}"
    )


def check_decoder_mask(fn: Callable) -> None:
    """Check a learner's decoder self-attention mask built from a Hugging Face attention_mask.

    Three fresh batches are tried: right-padded with ``B != T`` and ``B == T`` (which catches
    a padding mask broadcast against the queries), and left-padded, whose first queries have
    no real key at all.

    Args:
        fn: ``fn(attention_mask)`` gets a ``torch.long`` tensor of 0s and 1s, 1 = real token
            (Hugging Face's convention), and returns the bool mask of decoder self-attention,
            True = may attend: query ``i`` may attend to key ``j`` only if ``j <= i`` and key
            ``j`` is a real token (padding hides keys, not queries), ``(B, 1, T, T)``.

    Shapes:
        attention_mask ``(B, T)`` -> ``(B, 1, T, T)``.

    Introduced in chapter 03 (exercise ex-03-decoder-mask).
    """
    name = "check_decoder_mask"
    cases = _decoder_cases(_generator())
    for description, keep in cases:
        attention_mask = keep.long()  # (B, T): 1 = real token, 0 = padding
        try:
            got = _call(name, description, fn, attention_mask.clone())
        except CheckFailed as err:
            if "must match the size of tensor" not in str(err):
                raise
            hint = "\n  (a (B, T) padding mask cannot be combined with the (T, T) causal mask as it"
            raise CheckFailed(f"{err}{hint} is: reshape it to (B, 1, 1, T) first)") from None
        problem = _diagnose_decoder_mask(keep, got)
        if problem is not None:
            problem += f"\n  attention_mask: {attention_mask.tolist()}"
            raise _fail(name, description, problem)
    print(
        f"{name}: all {len(cases)} cases passed (right padding with B != T and B == T, left "
        "padding with fully masked rows)."
    )
