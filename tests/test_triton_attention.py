"""attention.triton_flash_attention: the Triton kernels equal attention, forward and backward.

Without a GPU the kernels run in Triton's interpreter on CPU tensors: TRITON_INTERPRET=1 is set
here, before the first kernel call imports triton. The interpreter is slow (numpy runs every
block operation), so the shapes are small, but they cross several 16 x 16 tiles with ragged
ends. In CI on Linux triton must be installed (requirements.txt): there a missing triton fails
the run instead of skipping it.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

from attention.triton_attention import triton_available, triton_flash_attention  # noqa: E402

if not triton_available():
    if os.environ.get("CI") and sys.platform.startswith("linux"):
        pytest.fail("triton is missing: CI on Linux must install it (requirements.txt)")
    pytest.skip("triton is not installed (it has wheels for Linux only)", allow_module_level=True)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
F64 = torch.float64


def reference(q, k, v, causal=False, scale=None):
    """Attention in float64 with the bottom-right causal mask; rows with no key give 0."""
    q, k, v = q.double(), k.double(), v.double()
    T, S = q.shape[-2], k.shape[-2]
    scores = q @ k.transpose(-2, -1) * (scale or q.shape[-1] ** -0.5)  # (B, H, T, S)
    if causal:
        keep = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T)
        scores = scores.masked_fill(~keep, -math.inf)
    return torch.softmax(scores, dim=-1).nan_to_num(0.0) @ v  # (B, H, T, D)


def qkv(B, H, T, S, D, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, n, D, generator=gen) for n in (T, S, S))
    return [t.to(DEVICE, dtype).requires_grad_() for t in (q, k, v)]


def grads(out, inputs, seed=1):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(out.shape, generator=gen).to(out.device, out.dtype)
    return torch.autograd.grad(out, inputs, g)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize(
    ("T", "S", "D"),
    [(37, 53, 16), (21, 50, 16), (53, 37, 24), (20, 5, 8)],
    ids=["T<S", "T<S, diagonal off the tile grid", "T>S, D=24 not a power of 2", "T>>S"],
)
def test_triton_forward_and_backward_equal_float64_attention(T, S, D, causal):
    q, k, v = qkv(1, 2, T, S, D)
    out = triton_flash_attention(q, k, v, causal=causal)
    ref = reference(q, k, v, causal)
    torch.testing.assert_close(out.double(), ref, atol=2e-6, rtol=1e-5)
    for got, want in zip(grads(out, (q, k, v)), grads(ref, (q, k, v)), strict=True):
        torch.testing.assert_close(got.double(), want.double(), atol=1e-5, rtol=1e-4)


def test_triton_causal_with_more_queries_than_keys_gives_zero_rows_and_finite_grads():
    q, k, v = qkv(1, 1, 24, 6, 16)  # queries 0..17 see no key (bottom right)
    out = triton_flash_attention(q, k, v, causal=True)
    assert torch.equal(out[..., :18, :], torch.zeros_like(out[..., :18, :]))
    assert out[..., 18:, :].abs().sum() > 0
    dq, dk, dv = grads(out, (q, k, v))
    assert all(torch.isfinite(g).all() for g in (dq, dk, dv))
    assert torch.equal(dq[..., :18, :], torch.zeros_like(dq[..., :18, :]))


def test_triton_agrees_with_the_package_flash_attention_and_takes_a_scale():
    from attention import flash_attention

    q, k, v = qkv(2, 1, 19, 33, 16)
    for causal in (False, True):
        out = triton_flash_attention(q, k, v, causal=causal, scale=0.3)
        want = flash_attention(q.double(), k.double(), v.double(), causal=causal, scale=0.3)
        torch.testing.assert_close(out.double(), want, atol=2e-6, rtol=1e-5)


def materialised(q, k, v, causal=False):
    """Attention in the inputs' dtype, with the (T, S) weights: low-precision baseline."""
    T, S = q.shape[-2], k.shape[-2]
    scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5  # (B, H, T, S), rounded to q.dtype
    if causal:
        keep = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T)
        scores = scores.masked_fill(~keep, -math.inf)
    return torch.softmax(scores, dim=-1).nan_to_num(0.0) @ v


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_triton_half_precision_is_as_accurate_as_attention_computed_in_that_dtype(dtype):
    # FlashAttention's own test criterion: error against float64 at most twice that of
    # materialised attention run in the same low precision (plus a hair for the gradients)
    q, k, v = qkv(1, 2, 40, 29, 32, dtype=dtype)
    with torch.no_grad():
        q.mul_(4.0)  # logits of ~20
    out = triton_flash_attention(q, k, v, causal=True)
    assert out.dtype == dtype
    low, ref = materialised(q, k, v, causal=True), reference(q, k, v, causal=True)
    outs = (out, low, ref)
    results = zip(*((t, *grads(t, (q, k, v))) for t in outs), strict=True)
    for name, (got, baseline, exact) in zip(("out", "dq", "dk", "dv"), results, strict=True):
        assert got.dtype == dtype
        err = (got.double() - exact.double()).abs().max().item()
        base = (baseline.double() - exact.double()).abs().max().item()
        assert err <= 2 * base + 1e-3, f"{name}: error {err:.2e} vs {dtype} materialised {base:.2e}"


@pytest.mark.parametrize(
    ("shapes", "match"),
    [
        (((1, 2, 5, 8), (1, 2, 6, 8), (1, 2, 6, 4)), "v must have q's head width D=8"),
        (((2, 5, 8), (2, 6, 8), (2, 6, 8)), r"must be 4-D \(B, H, T, D\), got q \(2, 5, 8\)"),
        (((1, 2, 5, 8), (1, 1, 6, 8), (1, 1, 6, 8)), "must share B and H"),
        (((1, 1, 5, 512), (1, 1, 6, 512), (1, 1, 6, 512)), "D=512 is above the kernels' 256"),
    ],
)
def test_triton_rejects_inputs_it_cannot_take_naming_them(shapes, match):
    q, k, v = (torch.randn(s, device=DEVICE) for s in shapes)
    with pytest.raises(ValueError, match=match):
        triton_flash_attention(q, k, v)


def test_triton_rejects_float64_and_names_the_interpreter_for_cpu_tensors(monkeypatch):
    q = torch.randn(1, 1, 4, 8, dtype=F64, device=DEVICE)
    with pytest.raises(ValueError, match="float32, float16 or bfloat16, got torch.float64"):
        triton_flash_attention(q, q, q)
    from attention import _triton_kernels

    monkeypatch.setattr(_triton_kernels, "INTERPRETED", False)
    x = torch.randn(1, 1, 4, 8)
    with pytest.raises(ValueError, match="set the environment variable TRITON_INTERPRET=1"):
        triton_flash_attention(x, x, x)


def test_triton_empty_lengths_need_no_launch():
    q, k, v = qkv(1, 2, 0, 5, 8)
    assert triton_flash_attention(q, k, v).shape == (1, 2, 0, 8)
    q, k, v = qkv(1, 2, 3, 0, 8)
    assert torch.equal(triton_flash_attention(q, k, v), torch.zeros(1, 2, 3, 8, device=DEVICE))


def test_import_attention_does_not_import_triton():
    code = "import sys, attention; assert 'triton' not in sys.modules, 'imported triton'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("causal", [False, True])
def test_triton_on_cuda_bfloat16_matches_torch_sdpa_forward_and_backward(causal):
    import torch.nn.functional as F

    q, k, v = qkv(2, 4, 1000, 1000, 128, dtype=torch.bfloat16)
    out = triton_flash_attention(q, k, v, causal=causal)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)  # T = S: no ambiguity
    torch.testing.assert_close(out, ref, atol=2e-2, rtol=2e-2)
    for got, want in zip(grads(out, (q, k, v)), grads(ref, (q, k, v)), strict=True):
        torch.testing.assert_close(got, want, atol=5e-2, rtol=5e-2)
