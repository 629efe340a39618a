"""Tests of attention.gqa.GroupedQueryAttention: GQA and MQA (chapter 08)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from attention import GroupedQueryAttention, MultiHeadAttention, causal_mask, padding_mask

F64 = torch.float64


def _mha(seed: int, d_model: int = 24, num_heads: int = 6) -> MultiHeadAttention:
    torch.manual_seed(seed)
    mha = MultiHeadAttention(d_model, num_heads, dtype=F64)
    with torch.no_grad():  # non-zero biases, so that a dropped bias would be noticed
        for p in (mha.q_proj, mha.k_proj, mha.v_proj, mha.out_proj):
            p.bias.normal_()
    return mha.eval()


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding"])
def test_gqa_equals_mha_when_groups_equal_heads(need_weights: bool, mask_kind: str) -> None:
    mha = _mha(0)
    gqa = GroupedQueryAttention.from_mha(mha).eval()
    x = torch.randn(3, 7, 24, dtype=F64)
    mask = {
        "none": None,
        "causal": causal_mask(7),
        "padding": padding_mask([7, 4, 1], 7)[:, None, None, :],
    }[mask_kind]
    out, weights = gqa(x, mask=mask, need_weights=need_weights)
    ref_out, ref_weights = mha(x, mask=mask, need_weights=need_weights)
    assert_close(out, ref_out, rtol=0, atol=1e-12)
    if need_weights:
        assert_close(weights, ref_weights, rtol=0, atol=1e-12)
    else:
        assert weights is None
    assert gqa.num_kv_heads == gqa.num_heads == 6


@settings(max_examples=15, deadline=None)
@given(
    B=st.integers(1, 3),
    T=st.integers(1, 6),
    S=st.integers(1, 6),
    Hkv=st.sampled_from([1, 2, 3]),
    G=st.sampled_from([1, 2, 4]),
    Dh=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_gqa_equals_mha_with_key_value_heads_shared_within_each_group(B, T, S, Hkv, G, Dh, seed):
    """GQA = MHA whose G query heads of a group carry copies of that group's K/V weights."""
    H = Hkv * G
    torch.manual_seed(seed)
    gqa = GroupedQueryAttention(H * Dh, H, Hkv, dtype=F64).eval()
    mha = MultiHeadAttention(H * Dh, H, dtype=F64).eval()
    with torch.no_grad():
        for name in ("q_proj", "out_proj"):
            getattr(mha, name).load_state_dict(getattr(gqa, name).state_dict())
        for name in ("k_proj", "v_proj"):
            src = getattr(gqa, name)  # (Hkv*Dh, D): head g in rows g*Dh .. (g+1)*Dh - 1
            w = src.weight.view(Hkv, 1, Dh, H * Dh).expand(Hkv, G, Dh, H * Dh)
            b = src.bias.view(Hkv, 1, Dh).expand(Hkv, G, Dh)
            getattr(mha, name).weight.copy_(w.reshape(H * Dh, H * Dh))
            getattr(mha, name).bias.copy_(b.reshape(H * Dh))
    q, kv = torch.randn(B, T, H * Dh, dtype=F64), torch.randn(B, S, H * Dh, dtype=F64)
    out, weights = gqa(q, kv)
    ref_out, ref_weights = mha(q, kv)
    assert_close(out, ref_out, rtol=0, atol=1e-12)
    assert_close(weights, ref_weights, rtol=0, atol=1e-12)
    assert weights.shape == (B, H, T, S)


def test_key_value_projections_shrink_by_the_group_size() -> None:
    D, H, Dh = 32, 8, 4
    for Hkv in (8, 4, 2, 1):
        gqa = GroupedQueryAttention(D, H, Hkv)
        assert gqa.k_proj.weight.shape == gqa.v_proj.weight.shape == (Hkv * Dh, D)
        n_params = sum(p.numel() for p in gqa.parameters())
        assert n_params == 2 * (D * D + D) + 2 * (D * Hkv * Dh + Hkv * Dh)


def test_from_mha_mean_pools_the_key_value_heads_of_each_group() -> None:
    mha = _mha(1, d_model=16, num_heads=4)  # Dh = 4
    mqa = GroupedQueryAttention.from_mha(mha, num_kv_heads=1)
    gqa = GroupedQueryAttention.from_mha(mha, num_kv_heads=2)
    w = mha.k_proj.weight.view(4, 4, 16)  # (H, Dh, D)
    assert_close(mqa.k_proj.weight, w.mean(0))
    assert_close(gqa.k_proj.weight, w.view(2, 2, 4, 16).mean(1).reshape(8, 16))
    assert_close(gqa.v_proj.bias, mha.v_proj.bias.view(2, 2, 4).mean(1).reshape(8))
    assert_close(gqa.q_proj.weight, mha.q_proj.weight, rtol=0, atol=0)


def test_fully_masked_rows_give_zeros_in_both_paths() -> None:
    gqa = GroupedQueryAttention(8, 4, 2, dtype=F64).eval()
    x = torch.randn(1, 3, 8, dtype=F64)
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[1] = False
    for need_weights in (True, False):
        out, _ = gqa(x, mask=mask, need_weights=need_weights)
        assert torch.isfinite(out).all()
        assert_close(out[0, 1], gqa.out_proj.bias)  # zero attention output, then W^O's bias


def test_gqa_errors_name_both_numbers() -> None:
    with pytest.raises(ValueError, match="num_heads=6 is not divisible by num_kv_heads=4"):
        GroupedQueryAttention(24, 6, 4)
    with pytest.raises(ValueError, match="d_model=10 is not divisible by num_heads=4"):
        GroupedQueryAttention(10, 4, 2)
    with pytest.raises(ValueError, match="num_kv_heads must be a positive int, got 0"):
        GroupedQueryAttention(8, 4, 0)
    with pytest.raises(ValueError, match="expected a MultiHeadAttention, got Linear"):
        GroupedQueryAttention.from_mha(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="num_heads=4 is not divisible by num_kv_heads=3"):
        GroupedQueryAttention.from_mha(MultiHeadAttention(8, 4), num_kv_heads=3)
    gqa = GroupedQueryAttention(8, 4, 2)
    with pytest.raises(ValueError, match="query has width 6"):
        gqa(torch.randn(1, 3, 6))
