"""attention.efficient: tiled attention with the online softmax equals ordinary attention."""

from __future__ import annotations

import math
import sys

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from attention import (
    SoftmaxState,
    causal_mask,
    combine_softmax_states,
    count_flops,
    flash_attention,
    online_softmax_update,
    peak_memory,
    scaled_dot_product_attention,
)
from attention.allocations import largest_allocation

F64 = torch.float64


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors, thousands of operations: on a busy machine a second thread waits for a core
    at every operation (milliseconds each), so these tests run on one, as chapter 11 does."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def qkv(*lead, T, S, Dk, Dv, dtype=F64, std=1.0, device="cpu"):
    q = torch.randn(*lead, T, Dk, dtype=dtype, device=device) * std
    k = torch.randn(*lead, S, Dk, dtype=dtype, device=device) * std
    return q, k, torch.randn(*lead, S, Dv, dtype=dtype, device=device)


def bottom_right(T, S, device="cpu"):
    """The causal mask with the queries as the last T positions: query i sees keys j <= i + S - T
    (for T > S the first T - S queries see none)."""
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(S - T)


def reference(q, k, v, causal=False, scale=None):
    """The package's materialised attention (zero rows, not NaN, where a query sees no key)."""
    mask = bottom_right(q.shape[-2], k.shape[-2], q.device) if causal else None
    return scaled_dot_product_attention(q, k, v, mask, scale=scale)[0]


@settings(max_examples=40, deadline=None)
@given(
    T=st.integers(1, 23),
    S=st.integers(1, 23),
    Dk=st.integers(1, 9),
    Dv=st.integers(1, 9),
    heads=st.integers(1, 3),
    block_q=st.integers(1, 26),
    block_k=st.integers(1, 26),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_flash_matches_torch_sdpa_for_awkward_shapes(
    T, S, Dk, Dv, heads, block_q, block_k, causal, seed
):
    torch.manual_seed(seed)
    q, k, v = qkv(2, heads, T=T, S=S, Dk=Dk, Dv=Dv, std=1.5)
    out = flash_attention(q, k, v, causal=causal, block_size=(block_q, block_k))
    torch.testing.assert_close(out, reference(q, k, v, causal), atol=1e-12, rtol=1e-10)
    if not causal:
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))


@pytest.mark.parametrize("causal", [False, True])
def test_flash_matches_reference_for_every_block_size_from_1_to_S_plus_3(causal):
    T, S = 13, 11
    q, k, v = qkv(2, 3, T=T, S=S, Dk=8, Dv=5)
    ref = reference(q, k, v, causal)
    for block in range(1, S + 4):
        out = flash_attention(q, k, v, causal=causal, block_size=block)
        torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-10, msg=f"block_size={block}")


@pytest.mark.parametrize(("T", "S"), [(4, 9), (7, 7), (1, 6)])
def test_causal_mask_is_bottom_right_like_causal_mask_and_torch_lower_right(T, S):
    from torch.nn.attention.bias import causal_lower_right

    q, k, v = qkv(2, T=T, S=S, Dk=6, Dv=3)
    out = flash_attention(q, k, v, causal=True, block_size=(2, 3))
    ref, _ = scaled_dot_product_attention(q, k, v, causal_mask(T, S))
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-10)
    lower_right = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(T, S))
    torch.testing.assert_close(out, lower_right)
    if T != S:  # torch's is_causal=True aligns the triangle at the top left instead
        top_left = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        assert not torch.allclose(out, top_left)


def test_causal_with_more_queries_than_keys_gives_zero_rows():
    q, k, v = qkv(2, T=9, S=4, Dk=6, Dv=3)  # queries 0..4 see no key, 5..8 see 1..4 keys
    out = flash_attention(q, k, v, causal=True, block_size=(2, 3))
    assert torch.equal(out[:, :5], torch.zeros_like(out[:, :5]))
    torch.testing.assert_close(out, reference(q, k, v, causal=True), atol=1e-12, rtol=1e-10)


def test_decoding_one_query_against_a_cache_sees_every_key():
    q, k, v = qkv(1, 2, T=1, S=12, Dk=8, Dv=8)  # the newest token against 12 cached keys
    out = flash_attention(q, k, v, causal=True, block_size=5)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))


def test_causal_output_ignores_future_keys():
    q, k, v = qkv(1, T=10, S=10, Dk=4, Dv=4)
    out = flash_attention(q, k, v, causal=True, block_size=3)
    k2, v2 = k.clone(), v.clone()
    k2[:, 6:] += 5.0
    v2[:, 6:] -= 7.0
    out2 = flash_attention(q, k2, v2, causal=True, block_size=3)
    assert torch.equal(out[:, :6], out2[:, :6])  # queries 0..5 never see keys 6..9
    assert not torch.allclose(out[:, 6:], out2[:, 6:])


@pytest.mark.parametrize("causal", [False, True])
def test_flash_is_stable_and_as_accurate_as_torch_for_large_logits_in_float32(causal):
    q, k, v = qkv(2, 2, T=70, S=50, Dk=16, Dv=8, dtype=torch.float32)
    q = q * 300.0  # logits of ~1e3: exp overflows float32 beyond 88
    out = flash_attention(q, k, v, causal=causal, block_size=(16, 8))
    assert torch.isfinite(out).all()
    exact = reference(q.double(), k.double(), v.double(), causal)
    torch_err = (reference(q, k, v, causal) - exact).abs().max()
    assert (out - exact).abs().max() <= 3 * torch_err + 1e-6  # float32 rounding, no worse


def test_flash_float32_matches_torch_sdpa_with_default_blocks():
    q, k, v = qkv(1, 4, T=1500, S=1300, Dk=32, Dv=48, dtype=torch.float32)
    out = flash_attention(q, k, v)  # several key tiles and a shorter last one
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)


def test_flash_bfloat16_keeps_its_softmax_state_in_float32():
    q, k, v = qkv(2, T=40, S=30, Dk=8, Dv=8, dtype=torch.float32)
    out = flash_attention(*(t.bfloat16() for t in (q, k, v)), block_size=7)
    assert out.dtype == torch.bfloat16
    ref = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out.float(), ref, atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_flash_half_precision_scores_are_float32_so_large_logits_stay_accurate(dtype):
    # logits of ~100: rounded to 16 bits they are off by up to 0.5 (bf16), so exp(s - m) by
    # e^0.5; float32 score tiles leave only the output's own rounding
    torch.manual_seed(0)
    q, k, v = qkv(1, 2, T=64, S=64, Dk=16, Dv=16, dtype=torch.float32)
    q = q * 25.0
    q, k, v = (t.to(dtype) for t in (q, k, v))
    exact = reference(q.double(), k.double(), v.double())
    out = flash_attention(q, k, v, block_size=16)
    rounding = (exact.to(dtype).double() - exact).abs().max()  # the best any dtype output can do
    scores_16 = torch.softmax((q @ k.transpose(-2, -1)) * 0.25, dim=-1) @ v  # 16-bit scores
    assert (out.double() - exact).abs().max() <= 2 * rounding
    assert (scores_16.double() - exact).abs().max() > 10 * rounding


def test_flash_broadcasts_leading_dims_and_takes_a_scale():
    q = torch.randn(2, 3, 5, 4, dtype=F64)
    k, v = torch.randn(1, 3, 6, 4, dtype=F64), torch.randn(2, 1, 6, 2, dtype=F64)
    ref, _ = scaled_dot_product_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(flash_attention(q, k, v, block_size=2, scale=0.3), ref)


def test_flash_empty_queries_and_keys():
    q, k, v = qkv(2, T=0, S=5, Dk=3, Dv=4)
    assert flash_attention(q, k, v).shape == (2, 0, 4)
    q, k, v = qkv(2, T=3, S=0, Dk=3, Dv=4)
    assert torch.equal(flash_attention(q, k, v, causal=True), torch.zeros(2, 3, 4, dtype=F64))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(block_size=0), "block_size must be a positive int.*got 0"),
        (dict(block_size=True), "block_size must be.*got True"),
        (dict(block_size=2.5), "block_size must be.*got 2.5"),
        (dict(block_size=(4, 0)), r"block_size must be.*got \(4, 0\)"),
        (dict(block_size=(1, 2, 3)), r"got \(1, 2, 3\)"),
        (dict(scale=math.inf), "scale must be a finite number, got inf"),
    ],
)
def test_flash_rejects_bad_options_naming_the_value(kwargs, match):
    q, k, v = qkv(T=3, S=3, Dk=2, Dv=2)
    with pytest.raises(ValueError, match=match):
        flash_attention(q, k, v, **kwargs)


def test_flash_rejects_bad_shapes_naming_them():
    q, k, v = qkv(2, T=3, S=4, Dk=5, Dv=2)
    with pytest.raises(ValueError, match=r"same last dim Dk: q \(2, 3, 5\) vs k \(2, 4, 6\)"):
        flash_attention(q, torch.randn(2, 4, 6, dtype=F64), v)
    with pytest.raises(ValueError, match=r"same length S.*k \(2, 4, 5\) vs v \(2, 7, 2\)"):
        flash_attention(q, k, torch.randn(2, 7, 2, dtype=F64))
    with pytest.raises(ValueError, match="floating-point tensor, got dtype torch.int64"):
        flash_attention(q.long(), k, v)


def test_cpu_softmax_may_write_over_its_input():
    # flash_attention relies on this on the CPU to keep one tile buffer instead of two
    x = torch.randn(3, 70, 300) * 20
    expected = torch.softmax(x, dim=-1)
    assert torch.softmax(x, dim=-1, out=x) is x
    torch.testing.assert_close(x, expected, atol=0, rtol=0)


# ------------------------------------------------------------------------ the online softmax


def fold(scores: torch.Tensor, v: torch.Tensor, widths: list[int]) -> SoftmaxState:
    state = SoftmaxState.initial(scores.shape[:-1], v.shape[-1], dtype=scores.dtype)
    start = 0
    for w in widths:
        state = online_softmax_update(
            state, scores[..., start : start + w], v[..., start : start + w, :]
        )
        start += w
    return state


def test_online_softmax_over_blocks_equals_softmax():
    scores, v = torch.randn(3, 4, 10, dtype=F64) * 50, torch.randn(3, 10, 6, dtype=F64)
    state = fold(scores, v, [3, 1, 4, 2])
    torch.testing.assert_close(state.output(), torch.softmax(scores, dim=-1) @ v)
    torch.testing.assert_close(state.row_max, scores.amax(dim=-1))
    torch.testing.assert_close(state.row_sum, torch.exp(scores - state.row_max[..., None]).sum(-1))


def test_combine_is_the_update_of_the_union_in_any_order():
    scores, v = torch.randn(2, 5, 9, dtype=F64) * 20, torch.randn(2, 9, 3, dtype=F64)
    a = fold(scores[..., :4], v[:, :4], [4])
    b = fold(scores[..., 4:7], v[:, 4:7], [3])
    c = fold(scores[..., 7:], v[:, 7:], [2])
    whole = fold(scores, v, [9])
    for merged in (
        combine_softmax_states(combine_softmax_states(a, b), c),
        combine_softmax_states(a, combine_softmax_states(b, c)),
        combine_softmax_states(c, combine_softmax_states(b, a)),
    ):
        for got, want in zip(merged, whole, strict=True):
            torch.testing.assert_close(got, want)


def test_fully_masked_block_leaves_the_state_and_gives_zero_not_nan():
    scores = torch.full((2, 3, 4), -math.inf, dtype=F64)
    v = torch.randn(2, 4, 5, dtype=F64)
    empty = fold(scores, v, [4])  # every key masked: no NaN, output 0
    assert torch.equal(empty.output(), torch.zeros(2, 3, 5, dtype=F64))
    start = fold(torch.randn(2, 3, 2, dtype=F64), torch.randn(2, 2, 5, dtype=F64), [2])
    after = online_softmax_update(start, scores, v)
    for got, want in zip(after, start, strict=True):
        torch.testing.assert_close(got, want)


# ------------------------------------------------------------------------ memory and GPU


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CPU peak memory needs Linux")
def test_flash_never_holds_the_score_matrix():
    q, k, v = qkv(1, 8, T=1024, S=1024, Dk=64, Dv=64, dtype=torch.float32)
    matrix = 8 * 1024 * 1024 * 4  # bytes of the (B, H, T, S) scores: 32 MiB
    naive = peak_memory(lambda: torch.softmax(q @ k.transpose(-2, -1) / 8, dim=-1) @ v)
    flash = peak_memory(lambda: flash_attention(q, k, v, block_size=(64, 256)))
    assert naive >= matrix
    assert flash < matrix / 4  # output 2 MiB + one (8, 64, 256) tile and its weights


@needs_cuda
@pytest.mark.parametrize("causal", [False, True])
def test_flash_on_cuda_bfloat16_matches_torch_sdpa(causal):
    q, k, v = qkv(2, 4, T=1000, S=1000, Dk=64, Dv=64, dtype=torch.bfloat16, device="cuda")
    out = flash_attention(q, k, v, causal=causal, block_size=(256, 512))
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=causal)
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)
    matrix = 2 * 4 * 1000 * 1000 * 2  # bytes of the (B, H, T, S) scores in bfloat16
    assert peak_memory(lambda: flash_attention(q, k, v, block_size=(128, 256))) < matrix / 2


# ------------------------------------------------------------------------ the backward pass


@pytest.mark.parametrize(("T", "S", "causal"), [(5, 7, True), (7, 5, True), (6, 6, False)])
def test_flash_passes_gradcheck_in_float64(T, S, causal):
    q, k, v = (t.requires_grad_() for t in qkv(1, T=T, S=S, Dk=3, Dv=2))
    assert torch.autograd.gradcheck(
        lambda q, k, v: flash_attention(q, k, v, causal=causal, block_size=(2, 3)), (q, k, v)
    )


@settings(max_examples=25, deadline=None)
@given(
    T=st.integers(1, 17),
    S=st.integers(1, 17),
    heads=st.integers(1, 3),
    block_q=st.integers(1, 20),
    block_k=st.integers(1, 20),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_flash_gradients_equal_autograd_through_the_reference(
    T, S, heads, block_q, block_k, causal, seed
):
    torch.manual_seed(seed)
    q, k, v = (t.requires_grad_() for t in qkv(2, heads, T=T, S=S, Dk=5, Dv=4, std=1.5))
    out = flash_attention(q, k, v, causal=causal, block_size=(block_q, block_k))
    ref = reference(q, k, v, causal)
    g = torch.randn_like(out)
    got = torch.autograd.grad(out, (q, k, v), g, allow_unused=True)
    want = torch.autograd.grad(ref, (q, k, v), g, allow_unused=True)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


def test_flash_gradients_reach_broadcast_inputs():
    q = torch.randn(2, 3, 5, 4, dtype=F64, requires_grad=True)
    k = torch.randn(1, 3, 6, 4, dtype=F64, requires_grad=True)
    v = torch.randn(2, 1, 6, 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda q, k, v: flash_attention(q, k, v, block_size=2), (q, k, v)
    )


def test_flash_saves_only_a_logsumexp_per_query_for_backward():
    B, H, T, S, D = 1, 2, 256, 192, 16
    q, k, v = (t.float().requires_grad_() for t in qkv(B, H, T=T, S=S, Dk=D, Dv=D))
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = flash_attention(q, k, v, block_size=64)
    inputs = {t.untyped_storage().data_ptr() for t in (q, k, v, out)}
    extra = [t for t in saved if t.untyped_storage().data_ptr() not in inputs]
    assert [tuple(t.shape) for t in extra] == [(B * H, T)]  # the logsumexp: O(T), not O(T S)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        saved.clear()
        reference(q, k, v)  # materialised attention keeps the (T, S) weights for backward
    assert max(t.numel() for t in saved) == B * H * T * S


def test_flash_forward_and_backward_never_allocate_a_score_matrix():
    q, k, v = (t.float().requires_grad_() for t in qkv(1, 2, T=512, S=384, Dk=16, Dv=16))

    def train_step(fn):
        fn(q, k, v).sum().backward()

    flash = largest_allocation(train_step, lambda q, k, v: flash_attention(q, k, v, block_size=64))
    assert flash.nbytes == 2 * 512 * 16 * 4  # the (G, T, Dk) gradient of q, not a score tile
    naive = largest_allocation(train_step, reference)
    assert naive.nbytes == 2 * 512 * 384 * 4  # the (B, H, T, S) scores, in float32


def test_flash_forward_plus_backward_flops_are_seven_sixths_of_materialised():
    # forward 2 matmuls; backward 5 (the scores are recomputed) against materialised 2 + 4
    B, H, T, S, D = 1, 2, 96, 80, 8
    q, k, v = (t.requires_grad_() for t in qkv(B, H, T=T, S=S, Dk=D, Dv=D))

    def train_step(fn):
        fn(q, k, v).sum().backward()

    flash = count_flops(train_step, lambda q, k, v: flash_attention(q, k, v, block_size=32))
    naive = count_flops(train_step, reference)
    assert naive == 12 * B * H * T * S * D
    assert flash == 14 * B * H * T * S * D
