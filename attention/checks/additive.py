"""Checkers of ``attention.additive`` (chapter 01): additive attention and what it costs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..additive import additive_attention
from ..profiling import count_flops
from ._common import (
    _as_int,
    _call,
    _close,
    _fail,
    _first_match,
    _generator,
    _randint,
    _randn,
    _random_mask,
    _tensor,
)


@dataclass
class _AdditiveCase:
    description: str
    query: torch.Tensor
    key: torch.Tensor
    value: torch.Tensor
    w_q: torch.Tensor
    w_k: torch.Tensor
    v_a: torch.Tensor
    mask: torch.Tensor | None = None


def _additive_cases(gen: torch.Generator) -> list[_AdditiveCase]:
    """Square weights first (a transposed matrix still runs there and can be named), then
    Dq != Dk != Dh, padding and random masks, extra batch dims."""
    lengths = torch.randint(1, 7, (2,), generator=gen)
    padding = torch.arange(7) < lengths[:, None]  # (B, S)
    shapes = [  # description, query, key, value, Dh, mask
        ("query (2, 4, 6), key/value (2, 5, 6)/(2, 5, 3), Dh = 6, no mask",
         (2, 4, 6), (2, 5, 6), (2, 5, 3), 6, None),
        ("query (2, 4, 5), key/value (2, 7, 3)/(2, 7, 6), Dh = 8, no mask",
         (2, 4, 5), (2, 7, 3), (2, 7, 6), 8, None),
        (f"query (2, 4, 5), key/value (2, 7, 3)/(2, 7, 6), Dh = 8, padding mask (2, 1, 7) for "
         f"lengths {lengths.tolist()}", (2, 4, 5), (2, 7, 3), (2, 7, 6), 8, padding[:, None, :]),
        ("query (2, 3, 5, 4), key/value (2, 3, 6, 4)/(2, 3, 6, 2), Dh = 5, random mask "
         "(2, 3, 5, 6)", (2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 2), 5,
         _random_mask(gen, 2, 3, 5, 6, cover_columns=True)),
    ]  # fmt: skip
    cases = []
    for description, q, k, v, Dh, mask in shapes:
        w_q, w_k = _randn(gen, Dh, q[-1], std=0.7), _randn(gen, Dh, k[-1], std=0.7)
        tensors = _randn(gen, *q), _randn(gen, *k), _randn(gen, *v)
        cases.append(_AdditiveCase(description, *tensors, w_q, w_k, _randn(gen, Dh), mask))
    return cases


def _additive_variant(
    c: _AdditiveCase, *, dim=-1, mask="ok", tanh="inside", transposed=False, scale=1.0
) -> torch.Tensor | None:
    """The output of additive attention written with one deliberate, common mistake."""
    w_q, w_k = (c.w_q.T, c.w_k.T) if transposed else (c.w_q, c.w_k)
    if transposed and (w_q.shape != c.w_q.shape or w_k.shape != c.w_k.shape):
        return None  # only square weights run transposed
    q = c.query @ w_q.T  # (..., T, Dh)
    k = c.key @ w_k.T  # (..., S, Dh)
    pairs = q[..., :, None, :] + k[..., None, :, :]  # (..., T, S, Dh)
    if tanh == "inside":
        scores = torch.tanh(pairs) @ c.v_a
    elif tanh == "none":
        scores = pairs @ c.v_a
    elif tanh == "outside":
        scores = torch.tanh(pairs @ c.v_a)
    else:  # "separate": tanh on each projection, then the sum
        scores = (torch.tanh(q)[..., :, None, :] + torch.tanh(k)[..., None, :, :]) @ c.v_a
    scores = scores * scale
    if c.mask is not None and mask in ("ok", "inverted", "zero"):
        keep = c.mask if mask != "inverted" else ~c.mask
        scores = scores.masked_fill(~keep, 0.0 if mask == "zero" else float("-inf"))
    weights = torch.softmax(scores, dim=dim)
    if c.mask is not None and mask == "after_softmax":
        weights = weights * c.mask
    return weights @ c.value


def _diagnose_additive(c: _AdditiveCase, out: torch.Tensor) -> str:
    suspects = [
        ("the softmax runs over the wrong axis: it must normalise over the keys (dim=-1), so "
         "that each query's weights sum to 1", dict(dim=-2)),
        ("there is no tanh: the score is v_a · tanh(W_q q + W_k k), a network with one "
         "non-linear hidden layer (without it, v_a · W_q q is the same for every key and the "
         "softmax cancels it: the weights no longer depend on the query)", dict(tanh="none")),
        ("the tanh is applied after v_a: it goes on the hidden vector W_q q + W_k k, before the "
         "product with v_a", dict(tanh="outside")),
        ("the tanh is applied to each projection separately: add W_q q + W_k k first, then "
         "take the tanh of the sum", dict(tanh="separate")),
        ("the weight matrices are transposed: they have nn.Linear's layout (Dh, Dq), so the "
         "projection is query @ w_q.T", dict(transposed=True)),
        ("the scores are divided by sqrt(Dh): that scale belongs to the dot product (chapter "
         "02); additive scores are used as they are", dict(scale=c.v_a.shape[0] ** -0.5)),
    ]  # fmt: skip
    if c.mask is not None:
        suspects += [
            ("the mask is ignored: fill the scores where the mask is False with -inf before "
             "the softmax", dict(mask="ignored")),
            ("the mask polarity is inverted: True means 'may attend', so fill the scores where "
             "the mask is False (~mask)", dict(mask="inverted")),
            ("the weights are zeroed after the softmax, so rows no longer sum to 1: mask the "
             "scores with -inf before the softmax", dict(mask="after_softmax")),
            ("the masked scores are set to 0, which still gets the weight e^0 = 1 before "
             "normalising: fill them with float('-inf')", dict(mask="zero")),
        ]  # fmt: skip
    ref = _additive_variant(c)
    found = _first_match(out, suspects, lambda **knobs: _additive_variant(c, **knobs), right=ref)
    return found or (
        f"the output differs from the reference by up to {(out - ref).abs().max():.3g}; check, "
        "in order: q = query @ w_q.T, k = key @ w_k.T, scores = tanh(q[..., :, None, :] + "
        "k[..., None, :, :]) @ v_a, -inf where the mask is False, softmax over dim=-1, "
        "weights @ value"
    )


def check_additive_attention(fn: Callable) -> None:
    """Check a learner's additive (Bahdanau) attention on fresh random cases.

    Args:
        fn: called as ``fn(query, key, value, w_q, w_k, v_a)`` or with a ``mask`` after them,
            float64 tensors; the mask is bool, True = may attend, broadcastable to
            ``(..., T, S)``. It returns ``out`` or ``(out, weights)``.

    Shapes:
        query ``(..., T, Dq)``, key ``(..., S, Dk)``, value ``(..., S, Dv)``, w_q ``(Dh, Dq)``,
        w_k ``(Dh, Dk)``, v_a ``(Dh,)`` -> out ``(..., T, Dv)``.

    Introduced in chapter 01 (exercise ex-01-additive).
    """
    name = "check_additive_attention"
    cases = _additive_cases(_generator())
    for c in cases:
        ref_out, ref_weights = additive_attention(
            c.query, c.key, c.value, c.w_q, c.w_k, c.v_a, c.mask
        )
        args = [t.clone() for t in (c.query, c.key, c.value, c.w_q, c.w_k, c.v_a)]
        if c.mask is not None:
            args.append(c.mask.clone())
        result = _call(name, c.description, fn, *args)  # copies: in-place edits are harmless
        if isinstance(result, tuple | list) and len(result) != 2:
            raise _fail(name, c.description, f"your function returned {len(result)} items; "
                        "return out or (out, weights)")  # fmt: skip
        out, weights = result if isinstance(result, tuple | list) else (result, None)
        hint = " (that is the weights' shape: return weights @ value)"
        hint = hint if getattr(out, "shape", None) == ref_weights.shape else ""
        nonfinite = (
            "the output contains NaN or inf: fill the masked scores with float('-inf') "
            "(masked_fill, not a product with inf), and remember True = may attend"
        )
        out = _tensor(
            name, c.description, out, ref_out.shape, f" = (..., T, Dv){hint}", nonfinite=nonfinite
        )
        if not _close(out, ref_out):
            raise _fail(name, c.description, _diagnose_additive(c, out))
        if isinstance(weights, torch.Tensor) and not _close(weights, ref_weights):
            message = ("the output is right but the returned weights are not: return the softmax "
                       "weights (..., T, S) that multiply the values")  # fmt: skip
            raise _fail(name, c.description, message)
    print(f"{name}: all {len(cases)} random cases passed (Dq != Dk != Dh, batched, padding and "
          "random masks).")  # fmt: skip


def _flop_terms(T: int, S: int, Dq: int, Dk: int, Dh: int, Dv: int) -> dict[str, int]:
    return {
        "projections": 2 * T * Dq * Dh + 2 * S * Dk * Dh,
        "scores": 2 * T * S * Dh,
        "weighted sum": 2 * T * S * Dv,
    }


def check_additive_flops(fn: Callable) -> None:
    """Check a learner's count of the FLOPs of ``attention.additive_attention``.

    The reference is what ``attention.count_flops`` reports when it runs the package's additive
    attention on tensors of the drawn sizes, so the formula must match the counter exactly.

    Args:
        fn: called as ``fn(T, S, Dq, Dk, Dh, Dv)`` with ints; returns an int.

    Introduced in chapter 01 (exercise ex-01-flops).
    """
    name, gen = "check_additive_flops", _generator()
    draws = [(5, 7, 4, 6, 8, 3)] + [tuple(_randint(gen, 2, 13) for _ in range(6)) for _ in "ab"]
    for T, S, Dq, Dk, Dh, Dv in draws:  # the first case is fixed: the stub's output shows it
        sizes = dict(T=T, S=S, Dq=Dq, Dk=Dk, Dh=Dh, Dv=Dv)
        case = ", ".join(f"{k}={v}" for k, v in sizes.items())
        tensors = (_randn(gen, T, Dq), _randn(gen, S, Dk), _randn(gen, S, Dv),
                   _randn(gen, Dh, Dq), _randn(gen, Dh, Dk), _randn(gen, Dh))  # fmt: skip
        with torch.no_grad():
            ref = count_flops(additive_attention, *tensors)
        got = _as_int(name, case, _call(name, case, fn, T, S, Dq, Dk, Dh, Dv),
                      expected="a number of FLOPs",
                      not_whole="got {value}, not a whole number of FLOPs")  # fmt: skip
        if got == ref:
            continue
        terms = _flop_terms(T, S, Dq, Dk, Dh, Dv)
        suspects = [
            ("you counted multiply-adds; a multiply-add is 2 FLOPs", ref // 2),
            ("the projections W_q q and W_k k are missing: 2·T·Dq·Dh + 2·S·Dk·Dh",
             ref - terms["projections"]),
            ("the product of each hidden vector with v_a is missing: 2·T·S·Dh",
             ref - terms["scores"]),
            ("the weighted sum of the values is missing: 2·T·S·Dv", ref - terms["weighted sum"]),
            ("you counted the element-wise additions and tanh (2·T·S·Dh); the counter counts "
             "matrix products only", ref + 2 * T * S * Dh),
            ("you counted the element-wise additions or the tanh (T·S·Dh); the counter counts "
             "matrix products only", ref + T * S * Dh),
            ("the projections are counted once per query–key pair; each query and each key is "
             "projected once: 2·T·Dq·Dh + 2·S·Dk·Dh",
             ref - terms["projections"] + 2 * T * S * (Dq + Dk) * Dh),
        ]  # fmt: skip
        diagnosis = next((m for m, value in suspects if value == got), None)
        raise _fail(name, case, diagnosis or f"got {got:,}, the counter reports {ref:,}; add "
                    "the projections, the scores (v_a times every hidden vector) and the "
                    "weighted sum, 2 FLOPs per multiply-add each")  # fmt: skip
    print(f"{name}: all {len(draws)} sets of sizes passed (your formula equals the FLOP counter).")
