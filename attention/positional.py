"""Position information: sinusoidal and learned absolute encodings, RoPE, ALiBi, T5 buckets."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validate import check_int
from .rope import apply_rope  # noqa: F401  (RoPE has its own module; kept importable here)

__all__ = [
    "LearnedPositionalEmbedding",
    "RelativePositionBias",
    "alibi_bias",
    "alibi_slopes",
    "apply_rope",
    "sinusoidal_positional_encoding",
]


def _check_lengths(T: int, S: int | None) -> int:
    """Validate T queries and S keys (default T); the queries are the last T of the S."""
    check_int("T", T)
    S = T if S is None else S
    check_int("S", S)
    if S < T:
        raise ValueError(f"S={S} keys is fewer than T={T} queries; the queries are the last T keys")
    return S


def sinusoidal_positional_encoding(
    max_len: int,
    d_model: int,
    *,
    base: float = 10000.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Build the fixed sinusoidal encoding of Vaswani et al. (2017, §3.5), positions from 0.

    ``PE[p, 2i] = sin(p / base^(2i/D))`` and ``PE[p, 2i+1] = cos(p / base^(2i/D))``: ``D/2``
    frequencies, one per (sin, cos) pair of columns, with wavelengths from ``2π`` to
    ``base·2π``. Computed in float64, then cast. It is **added** to the token embeddings.

    Args:
        max_len: number of positions (rows), ``0 .. max_len - 1``.
        d_model: model width ``D``; must be even.
        base: the constant 10000 of the paper.
        dtype, device: of the result.

    Returns:
        The encoding table.

    Shapes:
        -> ``(max_len, D)``.

    Introduced in chapter 05 (position information).
    """
    check_int("max_len", max_len)
    check_int("d_model", d_model)
    if d_model % 2:
        raise ValueError(f"d_model={d_model} must be even: each frequency fills a (sin, cos) pair")
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (D/2,): 0, 2, 4, ...
    angle = pos / base ** (two_i / d_model)  # (max_len, 1) / (D/2,) -> (max_len, D/2)
    pe = torch.stack((angle.sin(), angle.cos()), dim=-1)  # (max_len, D/2, 2): sin, cos pairs
    return pe.flatten(-2).to(device=device, dtype=dtype)  # (max_len, D/2, 2) -> (max_len, D)


class LearnedPositionalEmbedding(nn.Module):
    """Add a learned vector per absolute position (BERT, GPT, ViT): a table of ``max_len`` rows.

    The table has no row for positions ``>= max_len``: a longer input raises a ``ValueError``.

    Args:
        max_len: number of positions the table holds.
        d_model: model width ``D``.

    Shapes:
        x ``(..., T, D)`` with ``T <= max_len`` -> ``(..., T, D)``.

    Introduced in chapter 05 (position information).
    """

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        check_int("max_len", max_len)
        check_int("d_model", d_model)
        self.max_len, self.d_model = max_len, d_model
        self.embedding = nn.Embedding(max_len, d_model)  # initialised N(0, 1), then learned

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` plus the embeddings of positions ``0 .. T-1`` (shapes as the class)."""
        if x.dim() < 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be (..., T, d_model={self.d_model}), got {tuple(x.shape)}")
        T = x.shape[-2]  # tokens
        if T > self.max_len:
            raise ValueError(
                f"sequence length T={T} exceeds max_len={self.max_len}: the learned table has "
                f"no row for positions {self.max_len}..{T - 1}"
            )
        positions = torch.arange(T, device=self.embedding.weight.device)  # (T,)
        return x + self.embedding(positions)  # (..., T, D) + (T, D)


def alibi_slopes(num_heads: int, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Return ALiBi's head slopes, by the rule of the authors' code (which BLOOM and MPT use).

    For ``H`` a power of two, the geometric sequence ``2^(-8h/H)``, ``h = 1..H`` (Press et al.
    2022, §3): for 8 heads 1/2, 1/4, ..., 1/256. For other ``H``, the slopes of the closest
    lower power of two ``P``, followed by every other slope of the ``2P``-head sequence (its
    1st, 3rd, 5th, ...), ``H - P`` of them: for 12 heads the 8-head slopes, then
    ``2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5``.

    Args:
        num_heads: number of heads ``H``.
        dtype: of the result.

    Returns:
        One slope per head (decreasing when ``H`` is a power of two).

    Shapes:
        -> ``(H,)``.

    Introduced in chapter 05 (position information).
    """
    check_int("num_heads", num_heads)
    P = 1 << (num_heads.bit_length() - 1)  # the largest power of two <= H
    h = torch.arange(1, P + 1, dtype=torch.float64)  # (P,): 1..P
    slopes = 2.0 ** (-8.0 * h / P)  # (P,)
    if P < num_heads:  # the odd-numbered slopes of 2P heads: 2^(-8h/2P) for h = 1, 3, 5, ...
        odd = torch.arange(1, 2 * (num_heads - P), 2, dtype=torch.float64)  # (H - P,)
        slopes = torch.cat((slopes, 2.0 ** (-8.0 * odd / (2 * P))))  # (H,)
    return slopes.to(dtype)


def alibi_bias(
    num_heads: int,
    T: int,
    S: int | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Build ALiBi's score bias ``-slope_h · (i - j)``, a penalty linear in the distance.

    Add it to the scaled scores before the softmax; ALiBi adds no position embedding anywhere
    else (Press et al. 2022, §3). The paper defines keys at or before the query (``j <= i``);
    causal models mask the rest. For ``j > i`` this returns the mirror image
    ``-slope_h · (j - i)``, so an encoder can use it too. With ``S > T`` the queries are the
    last ``T`` of the ``S`` positions (decoding with a cache).

    Args:
        num_heads: number of heads ``H``.
        T: number of queries.
        S: number of keys, ``>= T``; defaults to ``T``.
        dtype, device: of the result.

    Returns:
        The bias: zero on the diagonal, negative elsewhere.

    Shapes:
        -> ``(H, T, S)``.

    Introduced in chapter 05 (position information).
    """
    S = _check_lengths(T, S)
    i = torch.arange(S - T, S)[:, None]  # (T, 1): query positions
    j = torch.arange(S)  # (S,): key positions
    slopes = alibi_slopes(num_heads, dtype=torch.float64)  # (H,)
    bias = slopes[:, None, None] * -(i - j).abs()  # (H, 1, 1) * (T, S) -> (H, T, S); ints: no -0.0
    return bias.to(device=device, dtype=dtype)


class RelativePositionBias(nn.Module):
    """Learn one score bias per head and per T5 bucket of the offset ``j - i``.

    T5's relative position bias (Raffel et al. 2020, §2.1). Per direction, half the buckets
    hold the distances ``0, 1, ...`` one each, the rest cover distances up to ``max_distance``
    in logarithmically wider ranges, and all larger distances share the last bucket (Mesh
    TensorFlow's rule, computed in float64 on the CPU so every device gets the same buckets).
    The bias depends only on the offset (translation invariance) and scores any length.

    Args:
        num_heads: number of heads ``H``.
        num_buckets: buckets of offsets (T5: 32).
        max_distance: distances from here on share the last bucket (T5: 128).
        bidirectional: separate buckets for keys after the query (encoders); with False
            (causal models) every future offset counts as 0.

    Shapes:
        ``forward(T, S=None)`` -> ``(H, T, S)``; ``buckets(T, S=None)`` -> ``(T, S)``. The
        queries are the last ``T`` of the ``S`` key positions.

    Introduced in chapter 05 (position information).
    """

    def __init__(
        self,
        num_heads: int,
        num_buckets: int = 32,
        max_distance: int = 128,
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        check_int("num_heads", num_heads)
        check_int("num_buckets", num_buckets)
        check_int("max_distance", max_distance)
        n = num_buckets // 2 if bidirectional else num_buckets  # buckets per direction
        if n // 2 < 1 or max_distance <= n // 2:
            raise ValueError(
                f"num_buckets={num_buckets} (bidirectional={bidirectional}) gives {n // 2} exact "
                f"buckets: it needs at least 1, and max_distance={max_distance} must exceed it"
            )
        self.num_heads, self.num_buckets = num_heads, num_buckets
        self.max_distance, self.bidirectional = max_distance, bool(bidirectional)
        self.relative_attention_bias = nn.Embedding(num_buckets, num_heads)  # one bias per bucket

    def buckets(self, T: int, S: int | None = None) -> torch.Tensor:
        """Return the bucket (int64, on the CPU) of each offset ``j - i`` (shapes as the class)."""
        S = _check_lengths(T, S)
        rel = torch.arange(S)[None, :] - torch.arange(S - T, S)[:, None]  # (T, S): j - i
        n = self.num_buckets // 2 if self.bidirectional else self.num_buckets  # per direction
        max_exact = n // 2
        if self.bidirectional:
            first, dist = (rel > 0).long() * n, rel.abs()  # keys after the query: own buckets
        else:
            first, dist = torch.zeros_like(rel), (-rel).clamp(min=0)
        ratio = dist.clamp(min=max_exact).double() / max_exact  # >= 1: log never sees 0
        scale = (n - max_exact) / math.log(self.max_distance / max_exact)
        log_bucket = (max_exact + ratio.log() * scale).long().clamp(max=n - 1)
        return first + torch.where(dist < max_exact, dist, log_bucket)  # (T, S)

    def forward(self, T: int, S: int | None = None) -> torch.Tensor:
        """Return the bias for ``T`` queries and ``S`` keys (shapes as the class)."""
        buckets = self.buckets(T, S).to(self.relative_attention_bias.weight.device)  # (T, S)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)  # (T, S, H) -> (H, T, S)
