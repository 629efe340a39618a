"""Exact attention in tiles with the online softmax: FlashAttention-2's algorithm, in PyTorch.

Queries are cut into blocks; for each, the keys are visited in blocks and folded into the
running state of the online softmax (``attention.online_softmax``), and the output is divided
once at the end (Dao 2023, Algorithm 1; the key-chunked form over all queries at once is
Rabe & Staats 2021). So the T x S score matrix never exists: only one (Bq, Bk) tile of it at a
time. The backward pass keeps only the logsumexp ``L = m + log l`` of each query and recomputes
the tiles (Dao 2023, Algorithm 2); ``flash_attention`` is a ``torch.autograd.Function``.
"""

from __future__ import annotations

import math

import torch

from ._validate import check_sdpa_inputs
from .online_softmax import SoftmaxState, online_softmax_update

__all__ = ["flash_attention"]

_NEG_INF = float("-inf")
_HALF = (torch.float16, torch.bfloat16)
# The CPU softmax writes over its input only for tiles this large: for tiny tiles the in-place
# kernel waits milliseconds at a thread barrier on a busy machine, and there is no memory to save.
_IN_PLACE = 1 << 16


def _fold_tile(state: SoftmaxState | None, scores: torch.Tensor, v: torch.Tensor) -> SoftmaxState:
    """``online_softmax_update`` for a tile without -inf, in fewer passes over the tile.

    ``torch.softmax`` computes max, exp, sum and division in one fused pass, about twice as fast
    on a CPU as ``exp`` alone. Its largest weight per row is ``exp(0) / l``, which gives the
    tile's own sum ``l`` back; the tile's state is then merged as ``combine_softmax_states``
    does, in place on the ``(BH, Bq, Dv)`` accumulator. On the CPU the weights overwrite the
    scores (the kernel finishes reading a row before writing it): one tile buffer, not two.
    """
    m_b = scores.amax(dim=-1)  # (BH, Bq): the tile's max
    if scores.device.type == "cpu" and scores.numel() >= _IN_PLACE:
        p = torch.softmax(scores, dim=-1, out=scores)  # (BH, Bq, Bk) = exp(s - m_b) / l_b
    else:
        p = torch.softmax(scores, dim=-1)  # (BH, Bq, Bk)
    l_b = p.amax(dim=-1).reciprocal_()  # (BH, Bq): 1 / (exp(0) / l_b) = l_b
    pv = torch.bmm(p, v)  # (BH, Bq, Bk) @ (BH, Bk, Dv) -> (BH, Bq, Dv), = acc_b / l_b
    if state is None:
        return SoftmaxState(m_b, l_b, pv.mul_(l_b[..., None]))
    row_max = torch.maximum(state.row_max, m_b)  # (BH, Bq)
    scale_old, scale_b = torch.exp(state.row_max - row_max), torch.exp(m_b - row_max)
    row_sum = torch.addcmul(state.row_sum * scale_old, l_b, scale_b)  # (BH, Bq)
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


def _tile_dtype(dtype: torch.dtype) -> torch.dtype:
    """Score tiles and softmax statistics are float32 for float16/bfloat16 inputs, as in
    FlashAttention's kernels: bfloat16 numbers near 1000 are 4 apart, so a score is rounded by up
    to 2, s - m by up to 4 and exp(s - m) by a factor of up to e^4."""
    return torch.float32 if dtype in _HALF else dtype


def _mask_tile(scores: torch.Tensor, i0: int, j0: int, offset: int) -> torch.Tensor:
    """Set ``-inf`` where key ``j`` lies after query ``i`` (bottom right: ``j > i + offset``)."""
    Bq, Bk = scores.shape[-2:]
    rows = torch.arange(i0 + offset, i0 + offset + Bq, device=scores.device)[:, None]  # (Bq, 1)
    cols = torch.arange(j0, j0 + Bk, device=scores.device)  # (Bk,)
    return scores.masked_fill_(cols > rows, _NEG_INF)  # (BH, Bq, Bk)


def _flash_forward(q, k, v, causal: bool, Bq: int, Bk: int, scale: float):
    """FlashAttention-2's forward pass (Dao 2023, Algorithm 1) on ``(BH, T, D)`` tensors.

    Outer loop over query blocks, inner over key blocks; the output of a query block is divided
    by its sum once, after its last key block. Returns ``out`` and the logsumexp ``L`` per query
    (``-inf`` for a query that may see no key), which is all the backward pass keeps.
    """
    BH, T, S = q.shape[0], q.shape[1], k.shape[1]  # batch x heads, query tokens, key tokens
    dtype = _tile_dtype(q.dtype)
    offset = S - T  # causal, bottom right: query i sees keys j <= i + S - T
    out = q.new_zeros(BH, T, v.shape[-1])  # stays 0 for a query that sees no key
    lse = torch.full((BH, T), _NEG_INF, dtype=dtype, device=q.device)
    tile = torch.empty(BH * min(Bq, T) * min(Bk, S), dtype=dtype, device=q.device)  # reused
    kt = k.transpose(1, 2)  # (BH, Dk, S), a view
    for i0 in range(0, T, Bq):
        i1 = min(i0 + Bq, T)
        qi = q[:, i0:i1].to(dtype) * scale  # (BH, Bq, Dk); scaling q is cheaper than the tile
        stop = max(0, min(S, i1 + offset)) if causal else S  # later keys: masked for the block
        state = None
        for j0 in range(0, stop, Bk):
            j1 = min(j0 + Bk, stop)
            scores = tile[: BH * (i1 - i0) * (j1 - j0)].view(BH, i1 - i0, j1 - j0)
            torch.bmm(qi, kt[:, :, j0:j1].to(dtype), out=scores)  # (BH, Bq, Dk) @ (BH, Dk, Bk)
            vj = v[:, j0:j1].to(dtype)  # (BH, Bk, Dv)
            if causal and j1 - 1 > i0 + offset:  # the tile straddles the diagonal
                if state is None:
                    state = SoftmaxState.initial(
                        (BH, i1 - i0), v.shape[-1], dtype=dtype, device=q.device
                    )
                state = online_softmax_update(state, _mask_tile(scores, i0, j0, offset), vj)
            else:
                state = _fold_tile(state, scores, vj)
        if state is not None:
            out[:, i0:i1] = state.output()  # (BH, Bq, Dv): the one division
            lse[:, i0:i1] = state.row_max + state.row_sum.log()  # log 0 = -inf: no key seen
    return out, lse


def _flash_backward(dout, q, k, v, out, lse, causal: bool, Bq: int, Bk: int, scale: float):
    """FlashAttention-2's backward pass (Dao 2023, Algorithm 2) on ``(BH, T, D)`` tensors.

    Outer loop over key blocks, inner over query blocks. Each tile of probabilities is
    recomputed from the scores and the saved logsumexp, ``P = exp(S - L)``; with
    ``D_i = rowsum(dO_i * O_i)``, ``dS = P * (dO V^T - D)`` gives ``dQ = dS K``, ``dK = dS^T Q``
    (times the scale) and ``dV = P^T dO``. Five tile matmuls against the forward pass's two.
    """
    T, S = q.shape[1], k.shape[1]  # query tokens, key tokens
    dtype = _tile_dtype(q.dtype)
    offset = S - T
    delta = (dout.to(dtype) * out.to(dtype)).sum(dim=-1)  # (BH, T): D = rowsum(dO * O)
    lse = lse.masked_fill(lse == _NEG_INF, math.inf)  # a query that saw no key: P = 0, not NaN
    dq = torch.zeros(q.shape, dtype=dtype, device=q.device)  # (BH, T, Dk)
    dk = torch.zeros(k.shape, dtype=dtype, device=q.device)  # (BH, S, Dk)
    dv = torch.zeros(v.shape, dtype=dtype, device=q.device)  # (BH, S, Dv)
    for j0 in range(0, S, Bk):
        j1 = min(j0 + Bk, S)
        kj, vj = k[:, j0:j1].to(dtype), v[:, j0:j1].to(dtype)  # (BH, Bk, Dk), (BH, Bk, Dv)
        first = max(0, j0 - offset) if causal else 0  # earlier queries see none of these keys
        for i0 in range(first, T, Bq):
            i1 = min(i0 + Bq, T)
            qi, doi = q[:, i0:i1].to(dtype), dout[:, i0:i1].to(dtype)  # (BH, Bq, Dk), (BH, Bq, Dv)
            s = torch.bmm(qi * scale, kj.transpose(1, 2))  # (BH, Bq, Bk): the scores, recomputed
            if causal and j1 - 1 > i0 + offset:
                _mask_tile(s, i0, j0, offset)
            p = s.sub_(lse[:, i0:i1, None]).exp_()  # (BH, Bq, Bk) = P, in the scores' buffer
            dv[:, j0:j1] += torch.bmm(p.transpose(1, 2), doi)  # (BH, Bk, Bq) @ (BH, Bq, Dv)
            ds = torch.bmm(doi, vj.transpose(1, 2))  # (BH, Bq, Bk) = dP = dO V^T
            ds.sub_(delta[:, i0:i1, None]).mul_(p)  # dS = P * (dP - D)
            dq[:, i0:i1] += torch.bmm(ds, kj).mul_(scale)  # (BH, Bq, Bk) @ (BH, Bk, Dk)
            dk[:, j0:j1] += torch.bmm(ds.transpose(1, 2), qi).mul_(scale)  # (BH, Bk, Dk)
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)


class _FlashAttention(torch.autograd.Function):
    """Forward by tiles; backward by recomputing the tiles from the saved logsumexp."""

    @staticmethod
    def forward(ctx, q, k, v, causal: bool, Bq: int, Bk: int, scale: float):
        out, lse = _flash_forward(q, k, v, causal, Bq, Bk, scale)
        ctx.save_for_backward(q, k, v, out, lse)  # O(T) beyond inputs and output: lse
        ctx.options = (causal, Bq, Bk, scale)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout):
        q, k, v, out, lse = ctx.saved_tensors
        grads = _flash_backward(dout, q, k, v, out, lse, *ctx.options)
        return (*grads, None, None, None, None)


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
    including lengths that are not multiples of the block sizes. This is FlashAttention-2's
    schedule: queries are cut into blocks of ``Bq``; for each, the keys are visited in blocks of
    ``Bk`` and folded into a ``SoftmaxState``, and the output is divided once at the end. Extra
    memory is one ``(BH, Bq, Bk)`` tile plus the ``(BH, Bq, Dv)`` state, where ``BH`` is the number
    of (batch, head) pairs, instead of ``(BH, T, S)``. Tiling saves memory (and, on a GPU, memory
    traffic), not work: the forward FLOPs are those of ordinary attention.

    Differentiable: the forward pass saves only the logsumexp of each query (``B x H x T`` numbers)
    besides its inputs and output, and the backward pass recomputes each tile of
    probabilities from it (FlashAttention-2, Algorithm 2): 5 tile matmuls instead of 4, so
    forward + backward cost 14 T S D FLOPs per head (with ``Dk = Dv = D``) against 12 for
    materialised attention, which keeps the ``T x S`` weights for its backward pass instead.

    On one CPU thread at T = 2048 it takes about twice the time of PyTorch's fused kernel and
    about half that of materialised attention (chapter 11 measures it and asserts "within 4x"
    and "faster"); on a GPU, where every tile costs several kernel launches and round trips
    through memory, it is far slower than a fused kernel (``attention.triton_flash_attention``
    is one; a loop like this one was 22-33x slower than SDPA on an H100).

    With ``causal=True``, query ``i`` attends to keys ``j <= i + S - T``: the mask is aligned at
    the **bottom right**, so the queries are the last ``T`` positions of the sequence (decoding
    with a KV cache; FlashAttention >= 2.1, ``attention.causal_mask(T, S)``). For ``T == S`` this
    is the usual lower-triangular mask; for ``T > S`` the first ``T - S`` queries see no key and
    get a zero output. Tiles entirely above the diagonal are skipped, which halves the work.
    (torch's ``is_causal=True`` aligns the mask at the top left instead when ``T != S``.)

    Args:
        q: queries.
        k: keys.
        v: values.
        causal: whether query ``i`` may only attend to keys ``j <= i + S - T`` (bottom right).
        block_size: ``Bq = Bk`` as one int, or a pair ``(Bq, Bk)``. The default suits CPUs
            (a tile of 8 heads is 4 MiB in float32).
        scale: factor applied to the scores; defaults to ``1 / sqrt(Dk)``.

    Returns:
        The attended values, in the inputs' dtype. For float16 and bfloat16 inputs the score
        tiles, the softmax state and the gradients' accumulators are float32, as in
        FlashAttention's kernels.

    Shapes:
        q ``(..., T, Dk)``, k ``(..., S, Dk)``, v ``(..., S, Dv)`` -> out ``(..., T, Dv)``.
        Leading dims (batch, heads) broadcast.

    Introduced in chapter 11 (FlashAttention from scratch).
    """
    check_sdpa_inputs(q, k, v, None)
    Bq, Bk = _block_sizes(block_size)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    elif not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number, got {scale}")
    T, S = q.shape[-2], k.shape[-2]  # query tokens, key tokens
    Dk, Dv = q.shape[-1], v.shape[-1]  # key width, value width
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])  # (B, H) or ...
    BH = math.prod(lead)  # batch x heads: each tile is one batched matmul over BH
    q3 = q.expand(*lead, T, Dk).reshape(BH, T, Dk)  # (..., T, Dk) -> (BH, T, Dk)
    k3 = k.expand(*lead, S, Dk).reshape(BH, S, Dk)  # (..., S, Dk) -> (BH, S, Dk)
    v3 = v.expand(*lead, S, Dv).reshape(BH, S, Dv)  # (..., S, Dv) -> (BH, S, Dv)
    out = _FlashAttention.apply(q3, k3, v3, bool(causal), Bq, Bk, float(scale))  # (BH, T, Dv)
    return out.view(*lead, T, Dv)  # (BH, T, Dv) -> (..., T, Dv)
