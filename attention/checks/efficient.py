"""Checker for chapter 11's tiled attention (attention/efficient.py): no T x S matrix allowed."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..allocations import AllocationRecorder
from ..online_softmax import SoftmaxState, online_softmax_update
from ._common import _call, _Case, _close, _fail, _generator, _randn, _tensor
from .online_softmax import _INF, _INIT, _INVERTED, _UPDATE_MISTAKES, _gap, _update_variant


def _fold(q, k, v, block: int, *, mistake: str | None = None, init: float = _INF) -> SoftmaxState:
    """The state after all key blocks, with an optional mistake in the update or the start."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    m = torch.full(q.shape[:-1], init, dtype=q.dtype)  # (..., T)
    state = SoftmaxState(m, torch.zeros_like(m), q.new_zeros(*q.shape[:-1], v.shape[-1]))
    for j in range(0, k.shape[-2], block):
        s = q @ k[..., j : j + block, :].transpose(-2, -1) * scale  # (..., T, Bk)
        vj = v[..., j : j + block, :]  # (..., Bk, Dv)
        if mistake is None:
            state = online_softmax_update(state, s, vj)
        else:
            state = _update_variant(state, s, vj, mistake)
    return state


def _flash_cases(gen: torch.Generator) -> list[tuple[_Case, int]]:
    """Uneven blocks, heads, a maximum that arrives late, and scores that are all very low."""
    pos = (torch.rand(2, 6, 8, generator=gen, dtype=torch.float64) + 1.0) * 20.0
    neg = -(torch.rand(2, 10, 8, generator=gen, dtype=torch.float64) + 1.0) * 20.0
    q_big = _randn(gen, 2, 5, 8, std=3.0)
    q_big[:, 0] *= 10.0 / q_big[:, 0].norm(dim=-1, keepdim=True)  # |q_0| = 10
    q_big[:, 1] = -q_big[:, 0]
    ramp = torch.linspace(-60.0, 60.0, 12, dtype=torch.float64)[:, None]  # (12, 1)
    k_big = q_big[:, :1] * ramp  # (2, 12, 8): query 0's scores climb to ~2000, query 1's fall
    return [
        (
            _Case(
                "q (2, 7, 4), k (2, 11, 4), v (2, 11, 3), block_size 4",
                _randn(gen, 2, 7, 4),
                _randn(gen, 2, 11, 4),
                _randn(gen, 2, 11, 3),
            ),
            4,
        ),
        (
            _Case(
                "q/k/v (2, 3, 9, 8) with heads, block_size 3",
                _randn(gen, 2, 3, 9, 8, std=1.5),
                _randn(gen, 2, 3, 9, 8, std=1.5),
                _randn(gen, 2, 3, 9, 8),
            ),
            3,
        ),
        (
            _Case(
                "scores of size ~2e3 rising along the keys or falling, block_size 5",
                q_big,
                k_big,
                _randn(gen, 2, 12, 4),
            ),
            5,
        ),
        (
            _Case(
                "every score far below 0 (about -1000), block_size 4",
                pos,
                neg,
                _randn(gen, 2, 10, 5),
            ),
            4,
        ),
        (
            _Case(
                _MEMORY_CASE,
                _randn(gen, 2, 3, 48, 5),
                _randn(gen, 2, 3, 40, 5),
                _randn(gen, 2, 3, 40, 6),
            ),
            8,
        ),
    ]


# T, S, Dk, Dv and the block all differ, so a score row (..., x, S) is not a copy of K or V
_MEMORY_CASE = "q (2, 3, 48, 5), k (2, 3, 40, 5), v (2, 3, 40, 6), block_size 8"


def _score_matrix_allocation(case: _Case, recorder: AllocationRecorder) -> str | None:
    """The failure message if the learner's code held the scores of all S keys at once.

    A tile of the scores is (..., T, block_size) = 1/5 of them here. Two things fail: a tensor
    of at least half the whole (..., T, S) matrix (the matrix, or most of it, existed at once),
    and a tensor with S along one of its last two dims and neither Dk nor Dv along the other,
    which is a row of S scores for some queries: attention over blocks of queries (or one query
    at a time) without the key loop. K and V themselves, copied, scaled or transposed, pass.
    """
    q, k, v = case.q, case.k, case.v
    T, S = q.shape[-2], k.shape[-2]
    widths = {q.shape[-1], v.shape[-1]}  # Dk, Dv: a (..., S, Dk) tensor is a copy of K
    whole = q[..., 0].numel() * S  # elements of the (..., T, S) matrix
    for alloc in recorder.allocations:
        numbers = alloc.nbytes // alloc.dtype.itemsize
        if numbers >= whole // 2:
            return (
                f"your function created a tensor of shape {alloc.shape} ({alloc.op}): "
                f"{numbers:,} numbers, as many as the whole (..., T, S) = (..., {T}, {S}) score "
                "matrix. Its output is right, but tiled attention must hold one "
                "(..., T, block_size) tile of scores at a time: compute the scores block by "
                "block of keys, inside the loop"
            )
        last2 = alloc.shape[-2:]
        other = last2[0] if last2[-1:] == (S,) else last2[-1]  # the dim beside S, if S is there
        if len(last2) == 2 and S in last2 and other not in widths:
            return (
                f"your function created a tensor of shape {alloc.shape} ({alloc.op}): scores of "
                f"some queries against all S = {S} keys at once. Its output is right, but cutting "
                "the queries into blocks is not tiled attention: each query still holds a whole "
                "row of S scores (for one query, as in decoding, that row is the whole matrix). "
                "Loop over blocks of block_size keys, for every query, and fold each block into "
                "the running state with your update"
            )
    return None


def _diagnose_flash(case: _Case, block: int, out: torch.Tensor, ref: torch.Tensor) -> str:
    q, k, v = case.q, case.k, case.v

    def finite(state: SoftmaxState) -> bool:
        return bool(torch.isfinite(state.acc / state.row_sum[..., None]).all())

    if not torch.isfinite(out).all() or (out == 0).all():
        if not finite(_fold(q, k, v, block, init=0.0)):
            return _INIT
        if not finite(_fold(q, k, v, block, mistake="inverted")) and all(
            finite(_fold(q, k, v, block, mistake=m)) for m in ("block_max", "no_max")
        ):
            return "NaN or inf: " + _INVERTED
        return (
            "NaN or inf: exp overflowed. Subtract the running max m_new = max(m_old, block max) "
            "inside exp, and rescale the old terms by exp(m_old - m_new), which is <= 1"
        )
    cut = k.shape[-2] // block * block  # the keys in full blocks
    if cut < k.shape[-2]:
        state = _fold(q, k[..., :cut, :], v[..., :cut, :], block)
        if _close(out, state.output()):
            return (
                "the last, shorter block of keys is skipped: loop with range(0, S, block_size) "
                "and slice k[..., j:j + block_size, :], which is shorter at the end"
            )
    for mistake, message in _UPDATE_MISTAKES.items():
        state = _fold(q, k, v, block, mistake=mistake)
        if _close(out, state.output()) or (mistake == "divide_early" and _close(out, state.acc)):
            return message
    return f"the output differs from attention by up to {_gap(out, ref)}"


def check_flash_attention(fn: Callable) -> None:
    """Check a learner's tiled attention with the online softmax on fresh random cases.

    Cases: lengths that are not multiples of the block size, T != S and Dv != Dk; extra
    (head) dims; scores of ~1e3 whose maximum arrives in a late block; scores all near -1000.
    Every tensor the function creates is recorded (``attention.allocations``): on a case with
    blocks of 8 of 40 keys, one as large as half the (..., T, S) score matrix, or one holding
    the scores of some queries against all S keys (blocks of queries without the key loop),
    fails the check however right the output, since tiled attention holds one
    (..., T, block_size) tile at a time.

    Args:
        fn: called as ``fn(q, k, v, block_size)`` with float64 tensors and an int; returns
            ``softmax(q k^T / sqrt(Dk)) v`` computed over blocks of ``block_size`` keys.

    Returns:
        None; prints one line when every case passes.

    Raises:
        AssertionError: naming the case and the likely mistake.

    Shapes:
        q ``(..., T, Dk)``, k ``(..., S, Dk)``, v ``(..., S, Dv)`` -> out ``(..., T, Dv)``.

    Introduced in chapter 11 (exercise ex-11-flash-attention).
    """
    name = "check_flash_attention"
    cases = _flash_cases(_generator())
    recorders = {}
    for case, block in cases:
        q, k, v = case.q, case.k, case.v
        ref = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v
        inputs = (q.clone(), k.clone(), v.clone())
        with AllocationRecorder() as recorders[case.description]:  # every tensor it creates
            out = _call(name, case.description, fn, *inputs, block)
        out = _tensor(name, case.description, out, ref.shape, " = (..., T, Dv)")
        if _close(out, ref):
            continue
        raise _fail(name, case.description, _diagnose_flash(case, block, out, ref))
    memory_case = next(case for case, _ in cases if case.description == _MEMORY_CASE)
    too_big = _score_matrix_allocation(memory_case, recorders[_MEMORY_CASE])
    if too_big:
        raise _fail(name, _MEMORY_CASE, too_big)
    print(
        f"{name}: all {len(cases)} random cases passed (uneven blocks, T != S, heads, "
        "large and very negative scores, no (T, S) matrix, no row of S scores)."
    )
