"""FlashAttention-2 written in Triton: a real fused GPU kernel that a CPU can also run and test.

``triton_flash_attention`` runs the kernels of ``attention/_triton_kernels.py``: the forward
pass (Dao 2023, Algorithm 1: one program per block of queries, the online softmax over blocks of
keys in registers, one division at the end, the logsumexp saved) and the backward pass by
recomputation (Algorithm 2, split into a dK/dV kernel and a dQ kernel so that nothing needs
atomics). ``triton`` is imported only when a kernel is first needed: ``import attention``
works without it, and Triton publishes wheels for Linux only.

On a CUDA GPU the kernels are compiled. On the CPU, Triton's interpreter runs them on CPU
tensors, numpy doing each block operation: set ``TRITON_INTERPRET=1`` before the first call
(before ``triton`` is imported), as the tests and chapter 11 do. It is slow, so keep it small.
"""

from __future__ import annotations

import importlib.util
import math
import sys

import torch

from ._validate import check_sdpa_inputs

__all__ = ["triton_available", "triton_flash_attention"]

_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_MAX_HEAD_DIM = 256
# Compile options: fused multiply-adds on (Triton 3.9 warns when this is left to its default).
_COMPILE = {"enable_fp_fusion": True}


def triton_available() -> bool:
    """Return whether the ``triton`` package is installed (without importing it).

    Returns:
        True if ``import triton`` would find the package. Triton has wheels for Linux only.

    Shapes:
        (none)

    Introduced in chapter 11 (FlashAttention from scratch).
    """
    return importlib.util.find_spec("triton") is not None


def _kernels():
    """The kernel module, imported (and so compiled or interpreted) on first use."""
    if not triton_available():
        raise ImportError(
            f"triton_flash_attention needs the triton package, which is not installed; "
            f"`pip install triton` (Triton has wheels for Linux only, this is {sys.platform})"
        )
    from . import _triton_kernels

    return _triton_kernels


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernels) -> None:
    """Raise ValueError naming the problem when the kernels cannot take these inputs."""
    check_sdpa_inputs(q, k, v, None)
    if not (q.dim() == k.dim() == v.dim() == 4):
        raise ValueError(
            f"q, k and v must be 4-D (B, H, T, D), got q {tuple(q.shape)}, k {tuple(k.shape)}, "
            f"v {tuple(v.shape)}"
        )
    if not (q.shape[:2] == k.shape[:2] == v.shape[:2]):
        raise ValueError(
            f"q, k and v must share B and H (no broadcasting), got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if v.shape[-1] != q.shape[-1]:
        raise ValueError(f"v must have q's head width D={q.shape[-1]}, got v {tuple(v.shape)}")
    if q.shape[-1] > _MAX_HEAD_DIM:
        raise ValueError(f"head width D={q.shape[-1]} is above the kernels' {_MAX_HEAD_DIM}")
    if q.dtype not in _DTYPES:
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {q.dtype}")
    if q.device.type == "cpu" and not kernels.INTERPRETED:
        raise ValueError(
            "Triton kernels run on a GPU; to run them on CPU tensors in Triton's interpreter, "
            "set the environment variable TRITON_INTERPRET=1 before the first call"
        )
    if q.device.type not in ("cpu", "cuda"):
        raise ValueError(
            f"triton_flash_attention runs on cuda (or cpu, interpreted), got {q.device}"
        )


def _launch_args(q, k, v, o):
    """The strides the kernels take, in their order: q, k, v, then o (and dO, which shares it)."""
    return [s for t in (q, k, v, o) for s in t.stride()]


def _precision(dtype: torch.dtype) -> str:
    """float32 inputs: full-precision products ("ieee"), not TF32, to match torch's default."""
    return "ieee" if dtype == torch.float32 else "tf32"


def _forward(q, k, v, causal: bool, scale: float, kernels):
    """Launch the forward kernel; return the output and the logsumexp ``(B, H, T)`` float32."""
    B, H, T, D = q.shape  # batch, heads, query tokens, head width
    S = k.shape[2]  # key tokens
    out = torch.empty_like(q)  # (B, H, T, D), contiguous like q
    lse = torch.empty(B, H, T, dtype=torch.float32, device=q.device)
    meta = {
        "CAUSAL": causal,
        "HEAD_DIM": D,
        "BLOCK_D": max(16, 1 << (D - 1).bit_length()),  # tl.arange needs a power of 2
        "PRECISION": _precision(q.dtype),
    }
    args = (q, k, v, out, lse, scale, T, S, H, *_launch_args(q, k, v, out))
    if kernels.fwd_kernel_tuned is None:  # interpreter: small tiles, so that tests see many
        grid = (triton_cdiv(T, 16), B * H)
        kernels.fwd_kernel[grid](*args, **meta, BLOCK_M=16, BLOCK_N=16)
    else:
        grid = lambda cfg: (triton_cdiv(T, cfg["BLOCK_M"]), B * H)  # noqa: E731
        kernels.fwd_kernel_tuned[grid](*args, **meta, **_COMPILE)
    return out, lse


def _backward(do, q, k, v, out, lse, causal: bool, scale: float, kernels):
    """Launch the dK/dV kernel and the dQ kernel; return ``(dq, dk, dv)``."""
    B, H, T, D = q.shape
    S = k.shape[2]
    delta = (do.float() * out.float()).sum(dim=-1)  # (B, H, T): D_i = rowsum(dO_i * O_i)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    block_d = max(16, 1 << (D - 1).bit_length())
    if kernels.INTERPRETED:
        block, warps, stages = 16, 1, 1
    else:  # smaller tiles for wide heads or float32, so that they fit in shared memory
        block = 32 if (q.dtype == torch.float32 and D > 64) else 64
        warps, stages = (8 if D > 64 else 4), 2
    meta = {
        "CAUSAL": causal,
        "HEAD_DIM": D,
        "BLOCK_D": block_d,
        "BLOCK_M": block,
        "BLOCK_N": block,
        "PRECISION": _precision(q.dtype),
        "num_warps": warps,
        "num_stages": stages,
        **({} if kernels.INTERPRETED else _COMPILE),
    }
    strides = _launch_args(q, k, v, out)
    kernels.bwd_dkdv_kernel[(triton_cdiv(S, block), B * H)](
        q, k, v, do, lse, delta, dk, dv, scale, T, S, H, *strides, **meta
    )
    kernels.bwd_dq_kernel[(triton_cdiv(T, block), B * H)](
        q, k, v, do, lse, delta, dq, scale, T, S, H, *strides, **meta
    )
    return dq, dk, dv


def triton_cdiv(a: int, b: int) -> int:
    """``ceil(a / b)`` for positive ints (as ``triton.cdiv``, without importing triton)."""
    return -(-a // b)


class _TritonFlashAttention(torch.autograd.Function):
    """The Triton forward kernel, and the backward kernels from the saved logsumexp."""

    @staticmethod
    def forward(ctx, q, k, v, causal: bool, scale: float):
        kernels = _kernels()
        out, lse = _forward(q, k, v, causal, scale, kernels)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.options = (causal, scale)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, do):
        q, k, v, out, lse = ctx.saved_tensors
        causal, scale = ctx.options
        grads = _backward(do.contiguous(), q, k, v, out, lse, causal, scale, _kernels())
        return (*grads, None, None)


def triton_flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """Compute exact attention with FlashAttention-2's fused Triton kernel (forward and backward).

    One program per block of queries and (batch, head) loads its queries once, streams the keys
    and values through in blocks, keeps the running max, sum and output of the online softmax
    in registers, and writes only the output and the logsumexp: the ``T x S`` scores never
    reach memory. Score tiles and statistics are float32 whatever the input dtype; the
    probabilities are rounded to the input dtype before the product with V, as in FlashAttention.
    The backward pass recomputes each tile from the saved logsumexp (one kernel for dK and dV,
    one for dQ).

    On a CUDA GPU the kernels are compiled (the forward kernel's tile sizes autotuned per shape).
    On CPU tensors they run in Triton's interpreter if ``TRITON_INTERPRET=1`` was set before the
    first call: exact, but slow, for tests and small examples.

    Args:
        q: queries.
        k: keys.
        v: values (the same head width as q and k).
        causal: whether query ``i`` may only attend to keys ``j <= i + S - T``: aligned at the
            bottom right, as ``attention.flash_attention`` and ``attention.causal_mask(T, S)``
            (for ``T > S`` the first ``T - S`` queries see no key and get zeros).
        scale: factor applied to the scores; defaults to ``1 / sqrt(D)``.

    Returns:
        The attended values, in the inputs' dtype; differentiable.

    Raises:
        ImportError: if triton is not installed.
        ValueError: for shapes, dtypes or devices the kernels do not take (CPU tensors without
            the interpreter, head width above 256, D of v different from q's, broadcasting).

    Shapes:
        q ``(B, H, T, D)``, k ``(B, H, S, D)``, v ``(B, H, S, D)`` -> out ``(B, H, T, D)``;
        T and S need not be multiples of the tile sizes, nor equal.

    Introduced in chapter 11 (FlashAttention from scratch).
    """
    kernels = _kernels()
    _check(q, k, v, kernels)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    elif not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number, got {scale}")
    B, H, T, D = q.shape
    S = k.shape[2]
    if B * H * T == 0 or S == 0:  # nothing to launch: no query, or no key to see (zeros)
        return q * 0.0
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    return _TritonFlashAttention.apply(q, k, v, bool(causal), float(scale))
