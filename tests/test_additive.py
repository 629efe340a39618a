"""attention.additive: Bahdanau's additive attention, against hand computations and PyTorch."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from attention.additive import AdditiveAttention, additive_attention
from attention.utils import set_seed

F64 = torch.float64


def randn(*shape: int, requires_grad: bool = False) -> torch.Tensor:
    return torch.randn(*shape, dtype=F64, requires_grad=requires_grad)


def loop_additive(query, key, value, w_q, w_k, v_a, mask=None, bias=None):
    """e_ij = v_a · tanh(W_q q_i + W_k k_j), one pair at a time; softmax with math.exp (2-D)."""
    T, S = query.shape[0], key.shape[0]
    out = torch.zeros(T, value.shape[1], dtype=F64)
    weights = torch.zeros(T, S, dtype=F64)
    b = torch.zeros(w_q.shape[0], dtype=F64) if bias is None else bias
    for i in range(T):
        allowed = [j for j in range(S) if mask is None or bool(mask[i, j])]
        scores = {j: float(v_a @ torch.tanh(w_q @ query[i] + w_k @ key[j] + b)) for j in allowed}
        if not scores:
            continue  # no allowed key: zero weights, zero output
        top = max(scores.values())
        total = sum(math.exp(s - top) for s in scores.values())
        for j, s in scores.items():
            weights[i, j] = math.exp(s - top) / total
            out[i] += weights[i, j] * value[j]
    return out, weights


# ----------------------------------------------------------------------------- hand computations


def test_additive_attention_matches_a_hand_worked_example():
    # Dh = 1, W_q = W_k = v_a = [1]: the score of (q, k) is tanh(q + k).
    query = torch.tensor([[0.0]], dtype=F64)
    key = torch.tensor([[0.0], [1.0]], dtype=F64)
    value = torch.tensor([[10.0], [20.0]], dtype=F64)
    one = torch.ones(1, 1, dtype=F64)
    out, weights = additive_attention(query, key, value, one, one, one[0])
    e0, e1 = math.exp(math.tanh(0.0)), math.exp(math.tanh(1.0))  # scores 0 and 0.7616
    expected = [e0 / (e0 + e1), e1 / (e0 + e1)]  # 0.3183, 0.6817
    assert_close(weights, torch.tensor([expected], dtype=F64))
    assert_close(out, torch.tensor([[10 * expected[0] + 20 * expected[1]]], dtype=F64))


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_additive_attention_matches_per_pair_loop(with_bias, with_mask):
    T, S, Dq, Dk, Dh, Dv = 4, 6, 3, 5, 7, 2
    query, key, value = randn(T, Dq), randn(S, Dk), randn(S, Dv)
    w_q, w_k, v_a, b = randn(Dh, Dq), randn(Dh, Dk), randn(Dh), randn(Dh)
    mask = None
    if with_mask:
        mask = torch.rand(T, S) < 0.5
        mask[0] = False  # one fully masked query
        mask[1:, 0] = True
    bias = b if with_bias else None
    out, weights = additive_attention(query, key, value, w_q, w_k, v_a, mask, bias=bias)
    ref_out, ref_weights = loop_additive(query, key, value, w_q, w_k, v_a, mask, bias)
    assert_close(out, ref_out)
    assert_close(weights, ref_weights)


def test_additive_score_is_a_one_hidden_layer_mlp_on_the_concatenated_pair():
    """v_a · tanh(W_q q + W_k k) = MLP([q; k]) with first-layer weight [W_q | W_k] (Luong's
    "concat" score), built from PyTorch's own layers."""
    T, S, Dq, Dk, Dh = 3, 5, 4, 6, 8
    layer = AdditiveAttention(Dq, Dk, Dh, bias=True, dtype=F64)
    mlp = nn.Sequential(nn.Linear(Dq + Dk, Dh), nn.Tanh(), nn.Linear(Dh, 1, bias=False)).double()
    with torch.no_grad():
        mlp[0].weight.copy_(torch.cat([layer.q_proj.weight, layer.k_proj.weight], dim=1))
        mlp[0].bias.copy_(layer.k_proj.bias)
        mlp[2].weight.copy_(layer.score_proj.weight)
    query, key, value = randn(2, T, Dq), randn(2, S, Dk), randn(2, S, 3)
    pairs = torch.cat(
        [query[:, :, None].expand(-1, -1, S, -1), key[:, None].expand(-1, T, -1, -1)], dim=-1
    )  # (B, T, S, Dq + Dk)
    scores = mlp(pairs).squeeze(-1)  # (B, T, S)
    out, weights = layer(query, key, value)
    assert_close(weights, torch.softmax(scores, dim=-1))
    assert_close(out, torch.softmax(scores, dim=-1) @ value)


def test_additive_weighted_sum_matches_torch_sdpa_given_the_scores_as_bias():
    """PyTorch has no additive attention, but its SDPA adds a float mask to the logits: with
    zero queries, softmax(0 + scores) @ v is exactly the second half of additive attention."""
    B, T, S, Dq, Dk, Dh, Dv = 2, 4, 6, 5, 3, 8, 7
    layer = AdditiveAttention(Dq, Dk, Dh, dtype=F64)
    query, key, value = randn(B, T, Dq), randn(B, S, Dk), randn(B, S, Dv)
    mask = torch.rand(B, T, S) < 0.6
    mask[..., 2] = True
    out, weights = layer(query, key, value, mask)
    hidden = torch.tanh(layer.q_proj(query)[:, :, None] + layer.k_proj(key)[:, None])
    scores = layer.score_proj(hidden).squeeze(-1)  # (B, T, S)
    bias = scores.masked_fill(~mask, float("-inf"))
    zeros = torch.zeros(B, T, 1, dtype=F64)
    ref = F.scaled_dot_product_attention(zeros, torch.zeros(B, S, 1, dtype=F64), value, bias)
    assert_close(out, ref)
    assert_close(weights.masked_fill(~mask, 0.0).sum(-1), torch.ones(B, T, dtype=F64))


# ----------------------------------------------------------------------------- properties


def test_additive_weights_rows_sum_to_one_and_masked_keys_get_exactly_zero():
    layer = AdditiveAttention(4, 4, 16, dtype=F64)
    lengths = torch.tensor([6, 3])
    mask = (torch.arange(6) < lengths[:, None])[:, None, :]  # (B, 1, S): source padding
    _, weights = layer(randn(2, 5, 4), randn(2, 6, 4), mask=mask)
    assert_close(weights.sum(-1), torch.ones(2, 5, dtype=F64))
    assert torch.equal(weights[1, :, 3:], torch.zeros(5, 3, dtype=F64))


def test_additive_padding_keys_do_not_change_outputs():
    layer = AdditiveAttention(4, 5, 8, dtype=F64)
    query, key, value = randn(1, 3, 4), randn(1, 6, 5), randn(1, 6, 2)
    mask = torch.tensor([True] * 4 + [False] * 2)[None, None, :]  # (1, 1, S)
    key2, value2 = key.clone(), value.clone()
    key2[:, 4:], value2[:, 4:] = randn(1, 2, 5) * 100, randn(1, 2, 2) * 100
    assert torch.equal(layer(query, key, value, mask)[0], layer(query, key2, value2, mask)[0])


def test_additive_fully_masked_row_gives_zeros_not_nan_and_finite_gradient():
    layer = AdditiveAttention(3, 3, 4, dtype=F64)
    query, key = randn(1, 2, 3, requires_grad=True), randn(1, 4, 3, requires_grad=True)
    mask = torch.tensor([[True, False, True, False], [False, False, False, False]])
    out, weights = layer(query, key, mask=mask)
    assert torch.equal(weights[0, 1], torch.zeros(4, dtype=F64))
    assert torch.equal(out[0, 1], torch.zeros(3, dtype=F64))
    out.sum().backward()
    assert torch.isfinite(query.grad).all() and torch.isfinite(key.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_additive_module_equals_function_and_need_weights_false_returns_none():
    layer = AdditiveAttention(6, 4, 5, bias=True, dtype=F64)
    query, key, value = randn(3, 2, 6), randn(3, 7, 4), randn(3, 7, 9)
    out, weights = layer(query, key, value)
    ref_out, ref_weights = additive_attention(
        query, key, value, layer.q_proj.weight, layer.k_proj.weight,
        layer.score_proj.weight[0], bias=layer.k_proj.bias,
    )  # fmt: skip
    assert_close(out, ref_out)
    assert_close(weights, ref_weights)
    out2, none = layer(query, key, value, need_weights=False)
    assert none is None
    assert torch.equal(out, out2)


def test_additive_value_defaults_to_key():
    layer = AdditiveAttention(2, 3, 4, dtype=F64)
    query, key = randn(1, 2, 2), randn(1, 5, 3)
    assert torch.equal(layer(query, key)[0], layer(query, key, key)[0])


def test_additive_parameter_count_and_names():
    layer = AdditiveAttention(6, 10, 8)
    names = {name: tuple(p.shape) for name, p in layer.named_parameters()}
    assert names == {"q_proj.weight": (8, 6), "k_proj.weight": (8, 10), "score_proj.weight": (1, 8)}
    with_bias = AdditiveAttention(6, 10, 8, bias=True)
    assert sum(p.numel() for p in with_bias.parameters()) == 8 * 6 + 8 * 10 + 8 + 8


@settings(max_examples=25, deadline=None)
@given(
    batch=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    T=st.integers(1, 5),
    S=st.integers(1, 6),
    dims=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 6), st.integers(1, 4)),
)
def test_additive_shapes_and_row_sums_for_random_shapes(batch, T, S, dims):
    Dq, Dk, Dh, Dv = dims
    set_seed(0)
    layer = AdditiveAttention(Dq, Dk, Dh, dtype=F64)
    out, weights = layer(randn(*batch, T, Dq), randn(*batch, S, Dk), randn(*batch, S, Dv))
    assert out.shape == (*batch, T, Dv) and weights.shape == (*batch, T, S)
    assert_close(weights.sum(-1), torch.ones(*batch, T, dtype=F64))


def test_additive_leading_dims_broadcast():
    layer = AdditiveAttention(3, 3, 4, dtype=F64)
    query, key, value = randn(2, 4, 5, 3), randn(2, 1, 6, 3), randn(2, 1, 6, 2)
    out, weights = layer(query, key, value)
    assert out.shape == (2, 4, 5, 2) and weights.shape == (2, 4, 5, 6)
    assert_close(out[:, 1], layer(query[:, 1], key[:, 0], value[:, 0])[0])


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (((2, 5, 4), (2, 6, 3), (2, 6, 2)), r"query \(2, 5, 4\) needs w_q \(Dh, 4\)"),
        (((2, 5, 3), (2, 6, 3), (2, 7, 2)), "key and value must have the same length S"),
        (((2, 5, 3), (3, 6, 3), (3, 6, 2)), "do not broadcast"),
        (((5,), (6, 3), (6, 2)), "at least 2 dims"),
    ],
)
def test_additive_shape_errors_name_the_shapes(args, match):
    layer = AdditiveAttention(3, 3, 4, dtype=F64)
    with pytest.raises(ValueError, match=match):
        layer(*(randn(*shape) for shape in args))


def test_additive_mask_errors():
    layer = AdditiveAttention(3, 3, 4)
    q, k = torch.randn(2, 5, 3), torch.randn(2, 6, 3)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        layer(q, k, mask=torch.ones(2, 5, 6, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"does not broadcast to the scores' shape \(2, 5, 6\)"):
        layer(q, k, mask=torch.ones(2, 5, 5, dtype=torch.bool))


def test_additive_dtype_mismatch_and_bad_sizes_are_refused():
    layer = AdditiveAttention(3, 3, 4)  # float32
    with pytest.raises(ValueError, match="share one dtype and device"):
        layer(randn(1, 2, 3), randn(1, 2, 3))
    with pytest.raises(ValueError, match="floating-point"):
        layer(torch.ones(1, 2, 3, dtype=torch.long), torch.randn(1, 2, 3))
    with pytest.raises(ValueError, match="hidden_dim must be a positive int"):
        AdditiveAttention(3, 3, 0)
    with pytest.raises(ValueError, match="bias must be a tensor of shape"):
        additive_attention(randn(2, 3), randn(4, 3), randn(4, 1), randn(5, 3), randn(5, 3),
                           randn(5), bias=randn(4))  # fmt: skip
