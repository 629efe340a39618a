"""The online softmax: a softmax over keys that arrive in blocks, exact, and never overflowing.

Keep, for every query, the running maximum ``m`` of the scores seen so far, the running sum
``l = sum exp(s - m)`` and the running weighted sum ``acc = sum exp(s - m) v``. A new block with
a larger maximum only rescales ``l`` and ``acc`` by ``exp(m_old - m_new)``, and ``acc / l`` is
attention's output at the end (Milakov & Gimelshein 2018). Two states over disjoint keys merge
the same way, in any order. ``attention.flash_attention`` is built on it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["SoftmaxState", "combine_softmax_states", "online_softmax_update"]


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
