"""Checker for chapter 11's online softmax update (attention/online_softmax.py)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..online_softmax import SoftmaxState, online_softmax_update
from ._common import _call, _close, _fail, _generator, _randn

_INF = float("-inf")

_RESCALE = (
    "the old sum and accumulator are not rescaled: when the maximum grows from m_old to m_new, "
    "multiply both by exp(m_old - m_new) before adding the block's terms"
)
_BLOCK_MAX = (
    "the new block's own maximum is used where the running one belongs: the running max is "
    "m_new = max(m_old, max of the block), and the block's terms are exp(s - m_new)"
)
_EARLY = (
    "the accumulator is divided by the sum too early: keep acc unnormalised (sum of "
    "exp(s - m) v) and divide by the sum once, after the last block"
)
_INVERTED = (
    "the rescaling factor is inverted: it is exp(m_old - m_new) <= 1, not exp(m_new - m_old)"
)
_INIT = (
    "the initial running maximum is wrong: start from m = -inf (or the first block's max), "
    "not 0; with scores far below 0, exp(s - 0) underflows to 0 and the sum is 0"
)


def _update_variant(state: SoftmaxState, s: torch.Tensor, v: torch.Tensor, mistake: str):
    """One update written with one deliberate, common mistake."""
    m_old, l_old, acc_old = state
    m_blk = s.amax(dim=-1)  # (..., T)
    m = m_blk if mistake == "block_max" else torch.maximum(m_old, m_blk)
    alpha = torch.exp(m - m_old if mistake == "inverted" else m_old - m)
    if mistake in ("no_rescale", "no_max"):
        alpha = torch.ones_like(alpha)
    shift = torch.zeros_like(m) if mistake in ("no_max", "no_max_rescaled") else m  # (..., T)
    shift = m_blk if mistake == "own_max" else shift
    p = torch.exp(s - shift[..., None])  # (..., T, Sb)
    row_sum = l_old * alpha + p.sum(dim=-1)
    acc = acc_old * alpha[..., None] + p @ v  # (..., T, Dv)
    if mistake == "divide_early":
        acc = acc / row_sum[..., None]
    return SoftmaxState(m, row_sum, acc)


_UPDATE_MISTAKES = {
    "no_rescale": _RESCALE,
    "block_max": _BLOCK_MAX,
    "own_max": _BLOCK_MAX + " (here the block's terms used the block's max)",
    "inverted": _INVERTED,
    "divide_early": _EARLY,
    "no_max": (
        "exp(s) is taken without subtracting the running max, which overflows for scores above "
        "~709 (float64) or ~88 (float32): use exp(s - m_new)"
    ),
}
_UPDATE_MISTAKES["no_max_rescaled"] = _UPDATE_MISTAKES["no_max"]


def _as_state(check: str, case: str, got: object, ref: SoftmaxState) -> SoftmaxState:
    """The learner's return value as a state, or a failure naming what was returned instead."""
    if not isinstance(got, tuple | list) or len(got) != 3:
        raise _fail(check, case, "return the new state as a tuple (row_max, row_sum, acc)")
    for name, t, r in zip(SoftmaxState._fields, got, ref, strict=True):
        if not isinstance(t, torch.Tensor) or t.shape != r.shape:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise _fail(check, case, f"{name} should have shape {tuple(r.shape)}, got {shape}")
    return SoftmaxState(*got)


def _same(a: SoftmaxState, b: SoftmaxState) -> bool:
    return all(_close(x, y) for x, y in zip(a, b, strict=True))


def _diagnose_update(state, s, v, got: SoftmaxState, ref: SoftmaxState) -> str:
    for mistake, message in _UPDATE_MISTAKES.items():
        if _same(got, _update_variant(state, s, v, mistake)):
            return message
    if not _close(got.row_max, ref.row_max):
        return "row_max is wrong: it must be max(m_old, the block's largest score), per query"
    if not _close(got.row_sum, ref.row_sum):
        return "row_sum is wrong: l_new = l_old * exp(m_old - m_new) + sum_j exp(s_j - m_new)"
    return "acc is wrong: acc_new = acc_old * exp(m_old - m_new) + exp(s - m_new) @ v"


def _blocks(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Scores of ~1e3 whose largest values sit in a later block for some rows, an earlier for
    others, so exp without the running max overflows in float64 either way."""
    T, Dv, widths = 5, 3, [6, 6, 6, 3]
    scores = _randn(gen, 2, T, sum(widths), std=5.0)
    scores[:, :3, 6:12] += 2000.0  # rows 0-2: the max arrives in the second block
    scores[:, 3:, :6] += 2000.0  # rows 3-4: the first block holds the max
    return scores - 1000.0, _randn(gen, 2, sum(widths), Dv), widths


def check_online_softmax_update(fn: Callable) -> None:
    """Check a learner's online softmax update on fresh random cases.

    Two stages: one update from a random mid-stream state (some rows' maximum grows, some do
    not), compared entry by entry; then four uneven blocks of scores of size ~1e3 folded from
    the initial state (``m = -inf``, ``l = 0``, ``acc = 0``), whose ``acc / l`` must equal
    ``softmax(scores) @ v``.

    Args:
        fn: called as ``fn(state, scores, v)`` with float64 tensors, where ``state`` is a
            ``SoftmaxState`` (unpack it with ``m, l, acc = state``) and ``scores`` are already
            scaled; returns the new ``(row_max, row_sum, acc)``, unnormalised.

    Returns:
        None; prints one line when every case passes.

    Raises:
        AssertionError: naming the case and the likely mistake.

    Shapes:
        state ``((..., T), (..., T), (..., T, Dv))``, scores ``(..., T, Sb)``, v ``(..., Sb, Dv)``
        -> ``((..., T), (..., T), (..., T, Dv))``.

    Introduced in chapter 11 (exercise ex-11-online-softmax).
    """
    name = "check_online_softmax_update"
    gen = _generator()
    T, Sb, Dv = 6, 5, 3
    row_sum = torch.rand(2, T, generator=gen, dtype=torch.float64) + 0.5  # (2, T)
    state = SoftmaxState(_randn(gen, 2, T, std=0.5), row_sum, _randn(gen, 2, T, Dv))
    s = _randn(gen, 2, T, Sb)
    s[:, :3] += 6.0  # rows 0-2: the block raises the maximum, so the old terms must be rescaled
    s[:, 3:] -= 9.0  # rows 3-5: the maximum stays
    v = _randn(gen, 2, Sb, Dv)
    case = f"one update from a mid-stream state, scores (2, {T}, {Sb}), v (2, {Sb}, {Dv})"
    ref = online_softmax_update(state, s, v)
    got = _call(name, case, fn, SoftmaxState(*(t.clone() for t in state)), s.clone(), v.clone())
    got = _as_state(name, case, got, ref)
    if not _same(got, ref):
        raise _fail(name, case, _diagnose_update(state, s, v, got, ref))

    scores, values, widths = _blocks(gen)
    case = f"blocks of widths {widths} folded from the initial state, scores of size ~1e3"
    state = SoftmaxState.initial((2, scores.shape[1]), values.shape[-1], dtype=torch.float64)
    start = 0
    for width in widths:
        blk, vals = scores[..., start : start + width], values[:, start : start + width]
        ref = online_softmax_update(state, blk, vals)
        got = _as_state(name, case, _call(name, case, fn, state, blk.clone(), vals.clone()), ref)
        state, start = got, start + width
    out = state.acc / state.row_sum[..., None]  # (2, T, Dv)
    expected = torch.softmax(scores, dim=-1) @ values
    if not _close(out, expected):
        msg = f"acc / row_sum differs from softmax(scores) @ v by up to {_gap(out, expected)}"
        if not torch.isfinite(out).all():
            msg = (
                "NaN or inf: exp overflowed or 0 * inf arose. Subtract the running max m_new = "
                "max(m_old, block max) inside exp, rescale the old terms by exp(m_old - m_new) "
                "(<= 1, and 0 when m_old = -inf), and divide only at the end"
            )
        raise _fail(name, case, msg)
    print(f"{name}: both stages passed (one mid-stream update; {len(widths)} blocks of ~1e3).")


def _gap(a: torch.Tensor, b: torch.Tensor) -> str:
    return f"{(a - b).abs().nan_to_num(math.inf).max().item():.3g}"
