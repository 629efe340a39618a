"""attention.core: scaled dot-product attention and masked softmax, against PyTorch in float64."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from attention import causal_mask, masked_softmax, padding_mask, scaled_dot_product_attention

F64 = torch.float64


def randn(*shape: int, dtype: torch.dtype = F64, requires_grad: bool = False) -> torch.Tensor:
    return torch.randn(*shape, dtype=dtype, requires_grad=requires_grad)


def torch_sdpa(q, k, v, mask=None, scale=None):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


def hand_sdpa(q, k, v, mask=None, scale=None):
    """softmax(q k^T * scale) v, written out with exp and sums (Vaswani et al. 2017, eq. 1)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = torch.einsum("...td,...sd->...ts", q, k) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    e = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    weights = e / e.sum(dim=-1, keepdim=True)
    return torch.einsum("...ts,...sd->...td", weights, v), weights


# ----------------------------------------------------------------------------- reference checks


def test_sdpa_matches_torch_reference_without_mask():
    q, k, v = randn(2, 3, 5, 8), randn(2, 3, 5, 8), randn(2, 3, 5, 8)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 5, 8) and weights.shape == (2, 3, 5, 5)
    assert_close(out, torch_sdpa(q, k, v))


def test_sdpa_matches_hand_formula():
    q, k, v = randn(4, 6, 16), randn(4, 9, 16), randn(4, 9, 3)
    mask = torch.rand(4, 6, 9) < 0.7
    mask[..., 0] = True  # no fully masked row: the formula would give NaN there
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    ref_out, ref_weights = hand_sdpa(q, k, v, mask)
    assert_close(out, ref_out)
    assert_close(weights, ref_weights)


@pytest.mark.parametrize(
    "mask_shape",
    [(5, 7), (1, 7), (5, 1), (3, 5, 7), (1, 5, 7), (2, 1, 5, 7), (2, 3, 5, 7), (1, 1, 1, 7)],
    ids=str,
)
def test_sdpa_matches_torch_reference_with_broadcast_bool_mask(mask_shape):
    q, k, v = randn(2, 3, 5, 8), randn(2, 3, 7, 8), randn(2, 3, 7, 4)
    mask = torch.rand(mask_shape) < 0.6
    mask[..., 0] = True  # every row keeps a key
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert_close(out, torch_sdpa(q, k, v, mask))
    assert weights.shape == (2, 3, 5, 7)
    assert (weights.masked_fill(mask, 0.0) == 0).all(), "a masked key got weight"


def test_sdpa_with_causal_mask_matches_torch_is_causal():
    q, k, v = randn(2, 4, 6, 8), randn(2, 4, 6, 8), randn(2, 4, 6, 8)
    out, weights = scaled_dot_product_attention(q, k, v, causal_mask(6))
    assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert (weights.triu(diagonal=1) == 0).all(), "a query attends to a future key"


def test_sdpa_cross_attention_with_t_ne_s_and_dv_ne_dk_matches_torch():
    q, k, v = randn(3, 4, 16), randn(3, 11, 16), randn(3, 11, 5)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert out.shape == (3, 4, 5), "out must be (..., T, Dv)"
    assert weights.shape == (3, 4, 11), "weights must be (..., T, S)"
    assert_close(out, torch_sdpa(q, k, v))


def test_sdpa_broadcasts_leading_dims_like_torch():
    q, k, v = randn(1, 3, 4, 8), randn(2, 1, 5, 8), randn(2, 1, 5, 6)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 4, 6) and weights.shape == (2, 3, 4, 5)
    assert_close(out, torch_sdpa(q, k, v))


def test_sdpa_accepts_unbatched_inputs():
    q, k, v = randn(4, 8), randn(6, 8), randn(6, 2)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert out.shape == (4, 2) and weights.shape == (4, 6)
    assert_close(out, torch_sdpa(q, k, v))


@pytest.mark.parametrize("scale", [0.05, 1.0, 3.0, -0.5])
def test_sdpa_custom_scale_matches_torch(scale):
    q, k, v = randn(2, 5, 8), randn(2, 7, 8), randn(2, 7, 8)
    out, _ = scaled_dot_product_attention(q, k, v, scale=scale)
    assert_close(out, torch_sdpa(q, k, v, scale=scale))
    assert_close(out, hand_sdpa(q, k, v, scale=scale)[0])


def test_sdpa_default_scale_is_inverse_sqrt_dk():
    q, k, v = randn(2, 5, 32), randn(2, 5, 32), randn(2, 5, 4)
    default, _ = scaled_dot_product_attention(q, k, v)
    explicit, _ = scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(32))
    unscaled, _ = scaled_dot_product_attention(q, k, v, scale=1.0)
    assert_close(default, explicit, rtol=0, atol=0)
    assert not torch.allclose(default, unscaled)


def test_sdpa_weights_rows_sum_to_one():
    q, k, v = randn(2, 3, 6, 8), randn(2, 3, 9, 8), randn(2, 3, 9, 8)
    mask = torch.rand(2, 3, 6, 9) < 0.5
    mask[..., 3] = True
    _, weights = scaled_dot_product_attention(q, k, v, mask)
    assert (weights >= 0).all()
    assert_close(weights.sum(dim=-1), torch.ones(2, 3, 6, dtype=F64))


def test_sdpa_output_is_weights_times_values():
    q, k, v = randn(2, 5, 8), randn(2, 7, 8), randn(2, 7, 3)
    out, weights = scaled_dot_product_attention(q, k, v, causal_mask(7)[:5])
    assert_close(out, weights @ v)


def test_sdpa_float32_matches_torch():
    q, k, v = (randn(2, 5, 16, dtype=torch.float32) for _ in range(3))
    out, _ = scaled_dot_product_attention(q, k, v)
    assert out.dtype == torch.float32
    assert_close(out, torch_sdpa(q, k, v))


# ----------------------------------------------------------------------------- fully masked rows


def test_sdpa_fully_masked_row_gives_zero_weights_and_zero_output():
    q, k, v = randn(2, 4, 8), randn(2, 6, 8), randn(2, 6, 5)
    mask = torch.ones(2, 4, 6, dtype=torch.bool)
    mask[0, 1] = False
    mask[1, 3] = False
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert not out.isnan().any() and not weights.isnan().any()
    assert (weights[0, 1] == 0).all() and (weights[1, 3] == 0).all()
    assert (out[0, 1] == 0).all() and (out[1, 3] == 0).all()
    kept = mask.any(dim=-1)
    assert_close(out[kept], torch_sdpa(q, k, v, mask)[kept])


def test_sdpa_left_padding_with_causal_mask_is_nan_free():
    # Left padding + causal: the first query of the padded sequence sees no real key at all.
    q, k, v = randn(2, 5, 8), randn(2, 5, 8), randn(2, 5, 8)
    real = padding_mask([5, 3]).flip(-1)  # (2, 5): sequence 1 is left-padded by 2
    mask = causal_mask(5) & real[:, None, :]  # (5, 5) & (2, 1, 5) -> (2, 5, 5)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all()
    assert (out[1, :2] == 0).all() and (weights[1, :2] == 0).all()
    assert_close(weights[1, 2:].sum(-1), torch.ones(3, dtype=F64))


def test_sdpa_fully_masked_rows_have_nan_free_gradients():
    q, k, v = (randn(2, 4, 8, requires_grad=True) for _ in range(3))
    mask = causal_mask(4).expand(2, 4, 4).clone()
    mask[1, 2] = False
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    out.square().sum().backward()
    for name, t in (("q", q), ("k", k), ("v", v)):
        assert t.grad is not None and torch.isfinite(t.grad).all(), f"{name}.grad is not finite"
    assert (q.grad[1, 2] == 0).all(), "a query that attends to nothing must get no gradient"


def test_sdpa_float32_logits_of_1e4_stay_finite():
    q = torch.full((1, 3, 4), 100.0)
    k = torch.tensor([[[100.0] * 4, [-100.0] * 4, [99.0] * 4]])  # scores ~ +-2e4
    v = randn(1, 3, 2, dtype=torch.float32)
    out, weights = scaled_dot_product_attention(q, k, v, scale=1.0)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    assert_close(weights.sum(-1), torch.ones(1, 3))
    assert_close(out, torch_sdpa(q, k, v, scale=1.0))


def test_sdpa_passes_gradcheck_with_mask():
    q, k, v = (
        randn(2, 3, 4, requires_grad=True),
        randn(2, 5, 4, requires_grad=True),
        randn(2, 5, 3, requires_grad=True),
    )
    mask = torch.rand(2, 3, 5) < 0.6
    mask[..., 0] = True
    mask[1, 2] = False  # a fully masked row too

    def f(q, k, v):
        return scaled_dot_product_attention(q, k, v, mask)

    assert torch.autograd.gradcheck(f, (q, k, v))


# ----------------------------------------------------------------------------- dropout


def test_sdpa_dropout_zeroes_some_weights_and_rescales_the_rest():
    q, k, v = randn(4, 16, 8), randn(4, 16, 8), randn(4, 16, 8)
    _, clean = scaled_dot_product_attention(q, k, v)
    out, dropped = scaled_dot_product_attention(q, k, v, dropout_p=0.25)
    zeroed = dropped == 0
    assert 0.1 < zeroed.double().mean() < 0.4, "about a quarter of the weights should be dropped"
    assert_close(dropped[~zeroed], clean[~zeroed] / 0.75)
    assert_close(out, dropped @ v)


def test_sdpa_without_dropout_is_deterministic():
    q, k, v = randn(2, 6, 8), randn(2, 6, 8), randn(2, 6, 8)
    first = scaled_dot_product_attention(q, k, v, dropout_p=0.0)
    torch.manual_seed(123)  # a different generator state must not matter
    second = scaled_dot_product_attention(q, k, v, dropout_p=0.0)
    assert_close(first, second, rtol=0, atol=0)
    assert (first[1] > 0).all(), "no weight may be dropped when dropout_p=0"


# ----------------------------------------------------------------------------- errors


def test_sdpa_rejects_mismatched_dk_naming_shapes():
    with pytest.raises(ValueError, match=r"last dim Dk: q \(2, 5, 8\) vs k \(2, 5, 7\)"):
        scaled_dot_product_attention(randn(2, 5, 8), randn(2, 5, 7), randn(2, 5, 7))


def test_sdpa_rejects_mismatched_s_naming_shapes():
    with pytest.raises(ValueError, match=r"length S \(dim -2\): k \(2, 5, 8\) vs v \(2, 6, 8\)"):
        scaled_dot_product_attention(randn(2, 5, 8), randn(2, 5, 8), randn(2, 6, 8))


def test_sdpa_rejects_non_broadcastable_batch_dims():
    with pytest.raises(ValueError, match=r"q \(2, 5, 8\), k \(3, 5, 8\) .* do not broadcast"):
        scaled_dot_product_attention(randn(2, 5, 8), randn(3, 5, 8), randn(3, 5, 8))


@pytest.mark.parametrize("dtype", [torch.float64, torch.int64, torch.uint8])
def test_sdpa_rejects_non_bool_mask(dtype):
    mask = torch.ones(5, 5, dtype=dtype)
    with pytest.raises(ValueError, match=rf"mask must be a bool tensor .*got {dtype}"):
        scaled_dot_product_attention(randn(5, 8), randn(5, 8), randn(5, 8), mask)


def test_sdpa_rejects_mask_that_is_not_a_tensor():
    with pytest.raises(ValueError, match=r"mask must be a bool tensor .*got list"):
        scaled_dot_product_attention(randn(2, 2), randn(2, 2), randn(2, 2), [[True, False]] * 2)


@pytest.mark.parametrize("mask_shape", [(5, 6), (4, 5), (3, 5, 5), (1, 2, 5, 5), (2, 2, 5, 5)])
def test_sdpa_rejects_non_broadcastable_mask_naming_shapes(mask_shape):
    q, k, v = randn(2, 5, 8), randn(2, 5, 8), randn(2, 5, 8)
    mask = torch.ones(mask_shape, dtype=torch.bool)
    expected = rf"mask of shape {re_shape(mask_shape)} does not broadcast .*\(2, 5, 5\)"
    with pytest.raises(ValueError, match=expected):
        scaled_dot_product_attention(q, k, v, mask)


def re_shape(shape: tuple[int, ...]) -> str:
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


@pytest.mark.parametrize("which", ["q", "k", "v"])
def test_sdpa_rejects_integer_inputs(which):
    args = {"q": randn(4, 8), "k": randn(4, 8), "v": randn(4, 8)}
    args[which] = torch.ones(4, 8, dtype=torch.int64)
    with pytest.raises(ValueError, match=rf"{which} must be a floating-point tensor, got dtype"):
        scaled_dot_product_attention(**args)


def test_sdpa_rejects_non_tensor_input():
    with pytest.raises(ValueError, match=r"q must be a torch.Tensor, got list"):
        scaled_dot_product_attention([[1.0]], randn(1, 1), randn(1, 1))


def test_sdpa_rejects_1d_input_naming_shape():
    with pytest.raises(ValueError, match=r"k must have at least 2 dims .*got shape \(8,\)"):
        scaled_dot_product_attention(randn(3, 8), randn(8), randn(3, 8))


def test_sdpa_rejects_dtype_mismatch():
    with pytest.raises(ValueError, match=r"share one dtype, got torch.float32, torch.float64"):
        scaled_dot_product_attention(randn(4, 8, dtype=torch.float32), randn(4, 8), randn(4, 8))


def test_sdpa_rejects_mask_on_another_device():
    mask = torch.ones(4, 4, dtype=torch.bool, device="meta")
    with pytest.raises(ValueError, match=r"mask is on meta but q is on cpu"):
        scaled_dot_product_attention(randn(4, 8), randn(4, 8), randn(4, 8), mask)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_sdpa_rejects_bad_dropout_p(p):
    with pytest.raises(ValueError, match=r"dropout_p must be in \[0, 1\), got"):
        scaled_dot_product_attention(randn(4, 8), randn(4, 8), randn(4, 8), dropout_p=p)


@pytest.mark.parametrize("scale", [float("inf"), float("-inf"), float("nan")])
def test_sdpa_rejects_non_finite_scale(scale):
    with pytest.raises(ValueError, match=r"scale must be a finite number, got"):
        scaled_dot_product_attention(randn(4, 8), randn(4, 8), randn(4, 8), scale=scale)


# ----------------------------------------------------------------------------- masked_softmax


def test_masked_softmax_without_mask_is_torch_softmax():
    scores = randn(3, 4, 7) * 3
    assert_close(masked_softmax(scores), torch.softmax(scores, dim=-1))


def test_masked_softmax_matches_torch_softmax_with_neg_inf_fill():
    scores = randn(3, 4, 7) * 3
    mask = torch.rand(3, 4, 7) < 0.5
    mask[..., 2] = True
    weights = masked_softmax(scores, mask)
    assert_close(weights, torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1))
    assert (weights[~mask] == 0).all(), "masked entries must get exactly zero weight"


def test_masked_softmax_broadcasts_mask():
    scores = randn(2, 3, 4, 5)
    mask = torch.tensor([True, False, True, True, False])  # (S,) -> (..., T, S)
    assert_close(
        masked_softmax(scores, mask),
        torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1),
    )


def test_masked_softmax_fully_masked_row_is_zero_with_zero_gradient():
    scores = randn(2, 3, 4, requires_grad=True)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[1, 0] = False
    weights = masked_softmax(scores, mask)
    assert (weights[1, 0] == 0).all()
    assert_close(weights[mask.any(-1)].sum(-1), torch.ones(5, dtype=F64))
    (weights * randn(2, 3, 4)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert (scores.grad[1, 0] == 0).all()


def test_masked_softmax_float32_scores_of_1e4_stay_finite():
    scores = torch.tensor([[1e4, -1e4, 9.9e3, 2e4]])  # the masked 2e4 is the largest
    mask = torch.tensor([[True, True, True, False]])
    weights = masked_softmax(scores, mask)
    assert torch.isfinite(weights).all()
    assert_close(weights, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))


def test_masked_softmax_passes_gradcheck():
    scores = randn(2, 3, 5, requires_grad=True)
    mask = torch.rand(2, 3, 5) < 0.5
    mask[..., 1] = True
    mask[0, 0] = False
    assert torch.autograd.gradcheck(lambda s: masked_softmax(s, mask), (scores,))


def test_masked_softmax_rejects_non_bool_mask():
    with pytest.raises(ValueError, match=r"mask must be a bool tensor \(True = keep\), got torch"):
        masked_softmax(randn(2, 3), torch.ones(2, 3))


def test_masked_softmax_rejects_non_broadcastable_mask_naming_shapes():
    with pytest.raises(
        ValueError, match=r"mask of shape \(3, 2\) does not broadcast to .*\(2, 3\)"
    ):
        masked_softmax(randn(2, 3), torch.ones(3, 2, dtype=torch.bool))


# ----------------------------------------------------------------------------- properties


@st.composite
def attention_problems(draw):
    """Random batch dims, T, S, Dk, Dv, scale and a random mask that broadcasts to (..., T, S)."""
    batch = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))
    T, S = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    Dk, Dv = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    full = (*batch, T, S)
    # Keep a suffix of the score dims, each either full-size or 1, so the mask broadcasts.
    n_dims = draw(st.integers(2, len(full)))
    mask_shape = tuple(size if draw(st.booleans()) else 1 for size in full[len(full) - n_dims :])
    use_mask = draw(st.booleans())
    scale = draw(st.one_of(st.none(), st.floats(0.01, 3.0)))
    seed = draw(st.integers(0, 2**31 - 1))
    return batch, T, S, Dk, Dv, mask_shape if use_mask else None, scale, seed


@settings(max_examples=30, deadline=None)
@given(attention_problems())
def test_sdpa_matches_torch_reference_on_random_shapes(problem):
    batch, T, S, Dk, Dv, mask_shape, scale, seed = problem
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(*batch, T, Dk, generator=gen, dtype=F64)
    k = torch.randn(*batch, S, Dk, generator=gen, dtype=F64)
    v = torch.randn(*batch, S, Dv, generator=gen, dtype=F64)
    mask = None if mask_shape is None else torch.rand(mask_shape, generator=gen) < 0.6
    out, weights = scaled_dot_product_attention(q, k, v, mask, scale=scale)
    assert out.shape == (*batch, T, Dv) and weights.shape == (*batch, T, S)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    ref = torch_sdpa(q, k, v, mask, scale=scale)
    kept = torch.ones(*batch, T, dtype=torch.bool)
    if mask is not None:
        kept = mask.expand(*batch, T, S).any(dim=-1)  # (..., T): rows with at least one key
    assert_close(out[kept], ref[kept])
    assert_close(weights.sum(-1)[kept], torch.ones_like(weights.sum(-1)[kept]))
    assert (out[~kept] == 0).all() and (weights[~kept] == 0).all()


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([1.0, 30.0, 1e4]),
)
def test_masked_softmax_matches_neg_inf_softmax_on_random_shapes(shape, seed, scale):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(*shape, generator=gen, dtype=F64) * scale
    mask = torch.rand(*shape, generator=gen) < 0.5
    weights = masked_softmax(scores, mask)
    kept = mask.any(dim=-1)
    ref = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    assert torch.isfinite(weights).all()
    assert_close(weights[kept], ref[kept])
    assert (weights[~kept] == 0).all() and (weights[~mask] == 0).all()


# ----------------------------------------------------------------------------- GPU

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
def test_sdpa_on_cuda_matches_cpu_and_torch():
    q, k, v = randn(2, 3, 5, 8), randn(2, 3, 7, 8), randn(2, 3, 7, 4)
    mask = torch.rand(5, 7) < 0.6
    mask[2] = False
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    args = [t.cuda() for t in (q, k, v, mask)]
    out_gpu, weights_gpu = scaled_dot_product_attention(*args)
    assert out_gpu.device.type == "cuda" and weights_gpu.device.type == "cuda"
    assert_close(out_gpu.cpu(), out)
    assert_close(weights_gpu.cpu(), weights)
    kept = mask.any(-1)
    assert_close(out_gpu[..., kept, :].cpu(), torch_sdpa(*args)[..., kept, :].cpu())


@needs_cuda
def test_sdpa_rejects_cpu_mask_with_cuda_inputs():
    q = randn(4, 8).cuda()
    with pytest.raises(ValueError, match=r"mask is on cpu but q is on cuda"):
        scaled_dot_product_attention(q, q, q, torch.ones(4, 4, dtype=torch.bool))
