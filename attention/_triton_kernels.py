"""The Triton kernels behind ``attention.triton_flash_attention`` (imports ``triton``).

Imported only by ``attention.triton_attention`` when a kernel is first needed, never by
``import attention``. Triton decides at decoration time, i.e. when this module is imported,
whether ``@triton.jit`` compiles for the GPU or runs on CPU tensors in its interpreter
(``TRITON_INTERPRET=1``), so that variable must be set before the first call.

Scores are kept in log2 units, ``s * scale * log2(e)``, so that the kernels use ``exp2``
(one instruction on a GPU) instead of ``exp``; the saved logsumexp is natural, ``ln sum exp``.
"""

from __future__ import annotations

import triton
import triton.language as tl

INTERPRETED = bool(triton.knobs.runtime.interpret)  # True: kernels run on CPU tensors
_INTERPRETED = tl.constexpr(INTERPRETED)  # the same, as kernels may read it
LOG2E = 1.4426950408889634  # log2(e): exp(x) = exp2(x * log2(e))
LN2 = 0.6931471805599453  # ln(2): ln(x) = log2(x) * ln(2)


@triton.jit
def _load(ptrs, rows, n_rows, cols, n_cols, CHECK_ROWS: tl.constexpr, CHECK_COLS: tl.constexpr):
    """Load a 2-D block, with zeros outside ``rows < n_rows`` and ``cols < n_cols`` if asked."""
    if CHECK_ROWS and CHECK_COLS:
        x = tl.load(ptrs, mask=(rows[:, None] < n_rows) & (cols[None, :] < n_cols), other=0.0)
    elif CHECK_ROWS:
        x = tl.load(ptrs, mask=rows[:, None] < n_rows, other=0.0)
    elif CHECK_COLS:
        x = tl.load(ptrs, mask=cols[None, :] < n_cols, other=0.0)
    else:
        x = tl.load(ptrs)
    return x


@triton.jit
def _dot(a, b, PRECISION: tl.constexpr):
    """``a @ b`` with float32 accumulation. Triton 3.9's interpreter multiplies bfloat16 blocks
    as raw 16-bit integers, so there both operands are widened to float32 first: exact, since
    a product of two bfloat16 numbers fits a float32, and the sum is float32 either way."""
    if _INTERPRETED:
        if a.dtype == tl.bfloat16:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
    return tl.dot(a, b, input_precision=PRECISION)


@triton.jit
def _fwd_tile(
    acc, l_i, m_i, q, k_base, v_base, stride_kt, stride_kd, stride_vt, stride_vd,
    start_n, offs_m, offs_n, offs_d, S, offset, qk_scale,
    MASKED: tl.constexpr, CAUSAL: tl.constexpr, HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """Fold one block of keys into the running (acc, l, m) of a block of queries."""
    cols = start_n + offs_n  # (BLOCK_N,) key positions
    kt = _load(  # (BLOCK_D, BLOCK_N): K_j^T
        k_base + cols[None, :] * stride_kt + offs_d[:, None] * stride_kd,
        offs_d, HEAD_DIM, cols, S, BLOCK_D != HEAD_DIM, MASKED,
    )  # fmt: skip
    v = _load(  # (BLOCK_N, BLOCK_D): V_j
        v_base + cols[:, None] * stride_vt + offs_d[None, :] * stride_vd,
        cols, S, offs_d, HEAD_DIM, MASKED, BLOCK_D != HEAD_DIM,
    )  # fmt: skip
    s = _dot(q, kt, PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N), float32
    if MASKED:  # the last, ragged block of keys, or a block that straddles the diagonal
        keep = cols[None, :] < S
        if CAUSAL:  # bottom right: query i sees keys j <= i + S - T
            keep = keep & (cols[None, :] <= offs_m[:, None] + offset)
        s = tl.where(keep, s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1))  # (BLOCK_M,) running max
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row with no key yet: no NaN
    p = tl.math.exp2(s - m_safe[:, None])  # (BLOCK_M, BLOCK_N), entries <= 1
    alpha = tl.math.exp2(m_i - m_safe)  # (BLOCK_M,) rescaling of the old terms, <= 1
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None] + _dot(p.to(v.dtype), v, PRECISION)
    return acc, l_i, m_new


@triton.jit
def fwd_kernel(
    Q, K, V, Out, LSE, sm_scale, T, S, H,
    stride_qb, stride_qh, stride_qt, stride_qd,
    stride_kb, stride_kh, stride_kt, stride_kd,
    stride_vb, stride_vh, stride_vt, stride_vd,
    stride_ob, stride_oh, stride_ot, stride_od,
    CAUSAL: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """FlashAttention-2's forward pass: one program per (block of queries, batch x head)."""
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    m0 = pid_m * BLOCK_M
    offs_m = m0 + tl.arange(0, BLOCK_M)  # query positions
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    q_ptrs = Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qt
    q = _load(  # (BLOCK_M, BLOCK_D): Q_i, loaded once
        q_ptrs + offs_d[None, :] * stride_qd, offs_m, T, offs_d, HEAD_DIM, True, BLOCK_D != HEAD_DIM
    )
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634  # log2 units: exp2 instead of exp
    offset = S - T
    if CAUSAL:
        hi = tl.maximum(tl.minimum(S, m0 + BLOCK_M + offset), 0)  # keys some row may see
        full = tl.maximum(tl.minimum(S, m0 + offset + 1), 0)  # keys every row may see
    else:
        hi = S
        full = S
    full = full // BLOCK_N * BLOCK_N  # whole blocks that need no mask
    for start_n in range(0, full, BLOCK_N):
        acc, l_i, m_i = _fwd_tile(
            acc, l_i, m_i, q, k_base, v_base, stride_kt, stride_kd, stride_vt, stride_vd,
            start_n, offs_m, offs_n, offs_d, S, offset, qk_scale,
            False, CAUSAL, HEAD_DIM, BLOCK_D, PRECISION,
        )  # fmt: skip
    for start_n in range(full, hi, BLOCK_N):
        acc, l_i, m_i = _fwd_tile(
            acc, l_i, m_i, q, k_base, v_base, stride_kt, stride_kd, stride_vt, stride_vd,
            start_n, offs_m, offs_n, offs_d, S, offset, qk_scale,
            True, CAUSAL, HEAD_DIM, BLOCK_D, PRECISION,
        )  # fmt: skip
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)  # a query that saw no key: output 0, not NaN
    out = acc / l_safe[:, None]  # the one division, at the end
    lse = tl.where(l_i == 0.0, float("-inf"), (m_i + tl.math.log2(l_safe)) * 0.6931471805599453)
    o_ptrs = Out + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_ot
    o_mask = (offs_m[:, None] < T) & (offs_d[None, :] < HEAD_DIM)
    tl.store(o_ptrs + offs_d[None, :] * stride_od, out.to(Out.dtype.element_ty), mask=o_mask)
    tl.store(LSE + pid_bh.to(tl.int64) * T + offs_m, lse, mask=offs_m < T)


@triton.jit
def bwd_dkdv_kernel(
    Q, K, V, DO, LSE, DELTA, DK, DV, sm_scale, T, S, H,
    stride_qb, stride_qh, stride_qt, stride_qd,
    stride_kb, stride_kh, stride_kt, stride_kd,
    stride_vb, stride_vh, stride_vt, stride_vd,
    stride_ob, stride_oh, stride_ot, stride_od,
    CAUSAL: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """dK_j and dV_j of one block of keys, looping over the query blocks that see it.

    ``DO`` shares the strides of the output (``stride_o*``); ``DK`` and ``DV`` those of ``K``
    and ``V``. Works in the transposed layout (keys along rows) so that dK and dV accumulate
    in registers without atomics.
    """
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    n0 = pid_n * BLOCK_N
    offs_n = n0 + tl.arange(0, BLOCK_N)  # key positions
    offs_d = tl.arange(0, BLOCK_D)
    k_ptrs = K + b * stride_kb + h * stride_kh + offs_n[:, None] * stride_kt
    v_ptrs = V + b * stride_vb + h * stride_vh + offs_n[:, None] * stride_vt
    k = _load(k_ptrs + offs_d[None, :] * stride_kd, offs_n, S, offs_d, HEAD_DIM, True, True)
    v = _load(v_ptrs + offs_d[None, :] * stride_vd, offs_n, S, offs_d, HEAD_DIM, True, True)
    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634
    offset = S - T
    lo = 0
    if CAUSAL:  # query i sees key j iff i >= j - (S - T)
        lo = tl.maximum(n0 - offset, 0) // BLOCK_M * BLOCK_M
    q_base = Q + b * stride_qb + h * stride_qh
    do_base = DO + b * stride_ob + h * stride_oh
    for start_m in range(lo, T, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        q = _load(
            q_base + offs_m[:, None] * stride_qt + offs_d[None, :] * stride_qd,
            offs_m, T, offs_d, HEAD_DIM, True, True,
        )  # fmt: skip
        do = _load(
            do_base + offs_m[:, None] * stride_ot + offs_d[None, :] * stride_od,
            offs_m, T, offs_d, HEAD_DIM, True, True,
        )  # fmt: skip
        lse = tl.load(LSE + pid_bh.to(tl.int64) * T + offs_m, mask=offs_m < T, other=float("inf"))
        lse = tl.where(lse == float("-inf"), float("inf"), lse)  # no key seen: P = 0
        delta = tl.load(DELTA + pid_bh.to(tl.int64) * T + offs_m, mask=offs_m < T, other=0.0)
        st = _dot(k, tl.trans(q), PRECISION) * qk_scale  # (BLOCK_N, BLOCK_M)
        pt = tl.math.exp2(st - lse[None, :] * 1.4426950408889634)  # P^T, recomputed
        keep = (offs_n[:, None] < S) & (offs_m[None, :] < T)
        if CAUSAL:
            keep = keep & (offs_n[:, None] <= offs_m[None, :] + offset)
        pt = tl.where(keep, pt, 0.0)
        dv += _dot(pt.to(do.dtype), do, PRECISION)  # dV_j += P^T dO_i
        dpt = _dot(v, tl.trans(do), PRECISION)  # (dO_i V_j^T)^T
        dst = pt * (dpt - delta[None, :])  # dS^T = P^T * (dP^T - D_i)
        dk += _dot(dst.to(q.dtype), q, PRECISION)  # dK_j += dS^T Q_i
    dk = dk * sm_scale
    n_mask = (offs_n[:, None] < S) & (offs_d[None, :] < HEAD_DIM)
    dk_ptrs = DK + b * stride_kb + h * stride_kh + offs_n[:, None] * stride_kt
    dv_ptrs = DV + b * stride_vb + h * stride_vh + offs_n[:, None] * stride_vt
    tl.store(dk_ptrs + offs_d[None, :] * stride_kd, dk.to(DK.dtype.element_ty), mask=n_mask)
    tl.store(dv_ptrs + offs_d[None, :] * stride_vd, dv.to(DV.dtype.element_ty), mask=n_mask)


@triton.jit
def bwd_dq_kernel(
    Q, K, V, DO, LSE, DELTA, DQ, sm_scale, T, S, H,
    stride_qb, stride_qh, stride_qt, stride_qd,
    stride_kb, stride_kh, stride_kt, stride_kd,
    stride_vb, stride_vh, stride_vt, stride_vd,
    stride_ob, stride_oh, stride_ot, stride_od,
    CAUSAL: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """dQ_i of one block of queries, looping over the key blocks it sees (``DQ``: Q's strides)."""
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    m0 = pid_m * BLOCK_M
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    q_ptrs = Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qt
    do_ptrs = DO + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_ot
    q = _load(q_ptrs + offs_d[None, :] * stride_qd, offs_m, T, offs_d, HEAD_DIM, True, True)
    do = _load(do_ptrs + offs_d[None, :] * stride_od, offs_m, T, offs_d, HEAD_DIM, True, True)
    lse = tl.load(LSE + pid_bh.to(tl.int64) * T + offs_m, mask=offs_m < T, other=float("inf"))
    lse = tl.where(lse == float("-inf"), float("inf"), lse)
    delta = tl.load(DELTA + pid_bh.to(tl.int64) * T + offs_m, mask=offs_m < T, other=0.0)
    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634
    offset = S - T
    hi = S
    if CAUSAL:
        hi = tl.maximum(tl.minimum(S, m0 + BLOCK_M + offset), 0)
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh
    for start_n in range(0, hi, BLOCK_N):
        cols = start_n + offs_n
        kt = _load(  # (BLOCK_D, BLOCK_N)
            k_base + cols[None, :] * stride_kt + offs_d[:, None] * stride_kd,
            offs_d, HEAD_DIM, cols, S, True, True,
        )  # fmt: skip
        vt = _load(
            v_base + cols[None, :] * stride_vt + offs_d[:, None] * stride_vd,
            offs_d, HEAD_DIM, cols, S, True, True,
        )  # fmt: skip
        s = _dot(q, kt, PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N)
        p = tl.math.exp2(s - lse[:, None] * 1.4426950408889634)
        keep = cols[None, :] < S
        if CAUSAL:
            keep = keep & (cols[None, :] <= offs_m[:, None] + offset)
        p = tl.where(keep, p, 0.0)
        dp = _dot(do, vt, PRECISION)  # dP = dO_i V_j^T
        ds = p * (dp - delta[:, None])
        dq += _dot(ds.to(kt.dtype), tl.trans(kt), PRECISION)  # dS K_j
    dq = dq * sm_scale
    q_mask = (offs_m[:, None] < T) & (offs_d[None, :] < HEAD_DIM)
    dq_ptrs = DQ + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qt
    tl.store(dq_ptrs + offs_d[None, :] * stride_qd, dq.to(DQ.dtype.element_ty), mask=q_mask)


# On a GPU the forward kernel's tile sizes are tuned once per shape (the benchmark's case);
# the interpreter runs the plain kernel with small tiles instead.
FWD_CONFIGS = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
    for bm, bn, w, s in [
        (128, 64, 4, 3),
        (128, 64, 8, 3),
        (128, 128, 8, 3),
        (128, 32, 4, 4),
        (64, 64, 4, 4),
        (64, 32, 4, 3),
    ]
]
fwd_kernel_tuned = (
    None
    if INTERPRETED
    else triton.autotune(FWD_CONFIGS, key=["T", "S", "HEAD_DIM", "CAUSAL", "PRECISION"])(fwd_kernel)
)
