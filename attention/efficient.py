"""Exact attention in tiles with the online softmax (FlashAttention's algorithm, in PyTorch).

The softmax over the keys can be computed one block of keys at a time: keep, for every query,
the running maximum ``m`` of the scores seen so far, the running sum ``l = sum exp(s - m)`` and
the running weighted sum ``acc = sum exp(s - m) v``. A new block with a larger maximum only
rescales ``l`` and ``acc`` by ``exp(m_old - m_new)``; ``acc / l`` is exact attention at the end.
So the T x S score matrix never exists: only one (Bq, Bk) tile of it at a time (Dao et al. 2022).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .core import _check_inputs

__all__ = ["SoftmaxState", "combine_softmax_states", "flash_attention", "online_softmax_update"]

_HALF = (torch.float16, torch.bfloat16)


class SoftmaxState(NamedTuple):
    """What the online softmax keeps per query after some blocks of keys (all unnormalised).

    ``m`` only keeps ``exp`` from overflowing: any reference value describes the same state if
    ``l`` and ``acc`` are relative to it. Keeping the true maximum keeps the most precision:
    ``exp(m_old - m_new)`` then uses differences of actual scores.

    Attributes:
        row_max: the largest score seen so far, ``m``; ``-inf`` before any key.
        row_sum: ``l = sum_j exp(s_j - m)`` over the keys seen so far.
        acc: ``sum_j exp(s_j - m) v_j``; attention's output is ``acc / l``.

    Shapes:
        row_max ``(..., T)``, row_sum ``(..., T)``, acc ``(..., T, Dv)``.

    Introduced in chapter 11 (FlashAttention from scratch).
    """

    row_max: torch.Tensor
    row_sum: torch.Tensor
    acc: torch.Tensor

    @classmethod
    def initial(
        cls,
        shape: tuple[int, ...],
        value_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> SoftmaxState:
        """Return the state before any key: ``m = -inf``, ``l = 0``, ``acc = 0``.

        Args:
            shape: the queries' leading shape ``(..., T)``.
            value_dim: the value width ``Dv``.
            dtype: dtype of the state.
            device: device of the state.

        Returns:
            The empty state; folding a block into it gives that block's own state.

        Shapes:
            -> row_max ``(..., T)``, row_sum ``(..., T)``, acc ``(..., T, Dv)``.

        Introduced in chapter 11 (FlashAttention from scratch).
        """
        factory = {"dtype": dtype, "device": device}
        return cls(
            torch.full(shape, float("-inf"), **factory),
            torch.zeros(shape, **factory),
            torch.zeros(*shape, value_dim, **factory),
        )

    def output(self) -> torch.Tensor:
        """Return attention's output ``acc / l``; a query that saw no allowed key gets 0.

        Returns:
            The normalised output.

        Shapes:
            -> ``(..., T, Dv)``.

        Introduced in chapter 11 (FlashAttention from scratch).
        """
        row_sum = self.row_sum.masked_fill(self.row_sum == 0, 1.0)  # 0/0 -> 0, not NaN
        return self.acc / row_sum[..., None]  # (..., T, Dv) / (..., T, 1)


def _safe_max(row_max: torch.Tensor) -> torch.Tensor:
    """The max to subtract: 0 where a row has seen no allowed key (-inf - -inf would be NaN)."""
    return row_max.masked_fill(row_max == float("-inf"), 0.0)


def online_softmax_update(
    state: SoftmaxState, scores: torch.Tensor, v: torch.Tensor
) -> SoftmaxState:
    """Fold one block of keys into the running softmax state (one online-softmax step).

    ``m' = max(m, max_j s_j)``; the old sum and accumulator were relative to ``m``, so both are
    rescaled by ``exp(m - m')`` before the block's ``exp(s_j - m')`` terms are added. Nothing
    is divided here: the division by the sum happens once, in ``SoftmaxState.output``.

    Args:
        state: the state after the previous blocks (``SoftmaxState.initial`` for the first).
        scores: the block's scaled scores ``q k^T / sqrt(Dk)``; ``-inf`` marks masked pairs.
        v: the block's values.

    Returns:
        The state after this block.

    Shapes:
        state ``((..., T), (..., T), (..., T, Dv))``, scores ``(..., T, Sb)``, v ``(..., Sb, Dv)``
        -> the same shapes as ``state``.

    Introduced in chapter 11 (exercise ex-11-online-softmax).
    """
    row_max = torch.maximum(state.row_max, scores.amax(dim=-1))  # (..., T)
    safe = _safe_max(row_max)  # (..., T)
    rescale = torch.exp(state.row_max - safe)  # (..., T); 0 for the initial m = -inf
    p = torch.exp(scores - safe[..., None])  # (..., T, Sb), each entry <= 1: never overflows
    row_sum = state.row_sum * rescale + p.sum(dim=-1)  # (..., T)
    acc = state.acc * rescale[..., None] + p @ v  # (..., T, Dv) + (..., T, Sb) @ (..., Sb, Dv)
    return SoftmaxState(row_max, row_sum, acc)


def combine_softmax_states(a: SoftmaxState, b: SoftmaxState) -> SoftmaxState:
    """Merge the states of two disjoint sets of keys into the state of their union.

    Each state is relative to its own maximum; both are rescaled to the larger one. The merge is
    associative and commutative, so blocks can be processed in any order or in parallel (this is
    how split-KV kernels such as Flash-Decoding combine partial results).

    Args:
        a: the state over one set of keys.
        b: the state over another set of keys, for the same queries.

    Returns:
        The state over both sets.

    Shapes:
        each ``((..., T), (..., T), (..., T, Dv))`` -> the same.

    Introduced in chapter 11 (FlashAttention from scratch).
    """
    row_max = torch.maximum(a.row_max, b.row_max)  # (..., T)
    safe = _safe_max(row_max)
    scale_a, scale_b = torch.exp(a.row_max - safe), torch.exp(b.row_max - safe)  # (..., T)
    row_sum = a.row_sum * scale_a + b.row_sum * scale_b  # (..., T)
    acc = a.acc * scale_a[..., None] + b.acc * scale_b[..., None]  # (..., T, Dv)
    return SoftmaxState(row_max, row_sum, acc)


def _fold_tile(
    state: SoftmaxState | None, scores: torch.Tensor, v: torch.Tensor, dtype: torch.dtype
) -> SoftmaxState:
    """``online_softmax_update`` for a tile without -inf, in fewer passes over the tile.

    ``torch.softmax`` computes max, exp, sum and division in one fused pass, about twice as fast
    on a CPU as ``exp`` alone. Its largest weight per row is ``exp(0) / l``, which gives the
    tile's own sum ``l`` back; the tile's state is then merged as ``combine_softmax_states``
    does, in place on the ``(G, Bq, Dv)`` accumulator. On the CPU the weights overwrite the
    scores (the kernel finishes reading a row before writing it): one tile buffer, not two.
    """
    m_b = scores.amax(dim=-1).to(dtype)  # (G, Bq): the tile's max
    if scores.device.type == "cpu" and scores.dtype == dtype:
        p = torch.softmax(scores, dim=-1, out=scores)  # (G, Bq, Bk) = exp(s - m_b) / l_b
    else:
        p = torch.softmax(scores, dim=-1, dtype=dtype)  # (G, Bq, Bk)
    l_b = p.amax(dim=-1).reciprocal_()  # (G, Bq): 1 / (exp(0) / l_b) = l_b
    pv = torch.bmm(p.to(v.dtype), v).to(dtype)  # (G, Bq, Bk) @ (G, Bk, Dv) -> (G, Bq, Dv)
    if state is None:
        return SoftmaxState(m_b, l_b, pv.mul_(l_b[..., None]))
    row_max = torch.maximum(state.row_max, m_b)  # (G, Bq)
    scale_old, scale_b = torch.exp(state.row_max - row_max), torch.exp(m_b - row_max)
    row_sum = torch.addcmul(state.row_sum * scale_old, l_b, scale_b)  # (G, Bq)
    acc = state.acc.mul_(scale_old[..., None]).addcmul_(pv, (l_b * scale_b)[..., None])
    return SoftmaxState(row_max, row_sum, acc)


def _block_sizes(block_size: int | tuple[int, int]) -> tuple[int, int]:
    """Validate ``block_size`` and return ``(Bq, Bk)``."""
    sizes = (block_size, block_size) if not isinstance(block_size, tuple) else block_size
    valid = len(sizes) == 2 and all(
        isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in sizes
    )
    if not valid:
        raise ValueError(
            f"block_size must be a positive int or a pair (Bq, Bk) of them, got {block_size!r}"
        )
    return sizes


def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    block_size: int | tuple[int, int] = (128, 1024),
    scale: float | None = None,
) -> torch.Tensor:
    """Compute exact attention tile by tile, never holding the T x S score matrix.

    Equals ``softmax(q k^T * scale) v`` (and ``F.scaled_dot_product_attention``) for any T and S,
    including lengths that are not multiples of the block sizes. Queries are cut into blocks of
    ``Bq``; for each, the keys are visited in blocks of ``Bk`` and folded into a
    ``SoftmaxState``. Extra memory is one ``(G, Bq, Bk)`` tile plus the ``(G, Bq, Dv)`` state,
    where ``G`` is the number of (batch, head) pairs, instead of ``(G, T, S)``. The FLOPs are
    those of ordinary attention: tiling saves memory (and, on a GPU, memory traffic), not work.
    On 2 CPU cores it runs about 1.2-1.4x the time of PyTorch's fused kernel (one Python-level
    loop step per tile); on a GPU, where each step is several kernel launches, far slower.

    With ``causal=True``, query ``i`` attends to keys ``j <= i``: the mask is aligned at the top
    left, as ``torch.tril(torch.ones(T, S))`` and ``F.scaled_dot_product_attention(...,
    is_causal=True)``. Tiles entirely above the diagonal are skipped, which halves the work.
    With ``T > S`` the last ``T - S`` queries see every key.

    Args:
        q: queries.
        k: keys.
        v: values.
        causal: whether query ``i`` may only attend to keys ``j <= i`` (top-left aligned).
        block_size: ``Bq = Bk`` as one int, or a pair ``(Bq, Bk)``. The default suits CPUs
            (a tile of 8 heads is 4 MiB in float32); GPUs prefer larger tiles.
        scale: factor applied to the scores; defaults to ``1 / sqrt(Dk)``.

    Returns:
        The attended values. float16 and bfloat16 inputs keep their softmax state in float32.

    Shapes:
        q ``(..., T, Dk)``, k ``(..., S, Dk)``, v ``(..., S, Dv)`` -> out ``(..., T, Dv)``.
        Leading dims (batch, heads) broadcast.

    Introduced in chapter 11 (FlashAttention from scratch).
    """
    _check_inputs(q, k, v, None)
    Bq, Bk = _block_sizes(block_size)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
        raise ValueError(
            "flash_attention computes the forward pass only (it reuses its tile buffers in "
            "place); call it under torch.no_grad(), or use scaled_dot_product_attention for "
            "gradients"
        )
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    elif not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number, got {scale}")
    T, S = q.shape[-2], k.shape[-2]  # query tokens, key tokens
    Dk, Dv = q.shape[-1], v.shape[-1]  # key width, value width
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])  # (B, H) or ...
    dtype = torch.float32 if q.dtype in _HALF else q.dtype  # dtype of the softmax state

    # Flatten batch and heads into one dim G, so each tile is one batched matmul.
    G = math.prod(lead)  # batch x heads
    q3 = q.expand(*lead, T, Dk).reshape(G, T, Dk)  # (..., T, Dk) -> (G, T, Dk)
    kt = k.expand(*lead, S, Dk).reshape(G, S, Dk).transpose(1, 2)  # -> (G, Dk, S), a view
    v3 = v.expand(*lead, S, Dv).reshape(G, S, Dv)  # (..., S, Dv) -> (G, S, Dv)
    out = q.new_zeros(G, T, Dv)  # stays 0 only if S == 0 (no key at all)
    tile = q.new_empty(G * min(Bq, T) * min(Bk, S))  # the scores of one tile, reused

    for i0 in range(0, T, Bq):
        i1 = min(i0 + Bq, T)
        qi = q3[:, i0:i1] * scale  # (G, Bq, Dk); scaling q is cheaper than scaling the tile
        stop = min(S, i1) if causal else S  # causal: keys >= i1 are masked for the whole block
        state = None
        for j0 in range(0, stop, Bk):
            j1 = min(j0 + Bk, stop)
            scores = tile[: G * (i1 - i0) * (j1 - j0)].view(G, i1 - i0, j1 - j0)
            torch.bmm(qi, kt[:, :, j0:j1], out=scores)  # (G, Bq, Dk) @ (G, Dk, Bk) -> (G, Bq, Bk)
            vj = v3[:, j0:j1]  # (G, Bk, Dv)
            if causal and j1 - 1 > i0:  # the tile straddles the diagonal: mask j > i
                rows = torch.arange(i0, i1, device=q.device)[:, None]  # (Bq, 1)
                cols = torch.arange(j0, j1, device=q.device)  # (Bk,)
                scores = scores.to(dtype).masked_fill_(cols > rows, float("-inf"))
                if state is None:
                    state = SoftmaxState.initial((G, i1 - i0), Dv, dtype=dtype, device=q.device)
                state = online_softmax_update(state, scores, vj.to(dtype))
            else:
                state = _fold_tile(state, scores, vj, dtype)
        if state is not None:
            out[:, i0:i1] = state.output()  # (G, Bq, Dv)
    return out.view(*lead, T, Dv)  # (G, T, Dv) -> (..., T, Dv)
