"""attention.multihead: MultiHeadAttention against torch, its errors and conversions (04)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from attention import MultiHeadAttention, causal_mask, combine_masks, padding_mask

F64 = torch.float64


def _pair(seed: int, d_model: int = 16, num_heads: int = 4, dropout: float = 0.0):
    """A torch nn.MultiheadAttention and our copy of it, both float64 and in eval mode."""
    torch.manual_seed(seed)
    theirs = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True, dtype=F64)
    with torch.no_grad():  # non-zero biases, so that a dropped bias would be noticed
        theirs.in_proj_bias.normal_()
        theirs.out_proj.bias.normal_()
    return theirs.eval(), MultiHeadAttention.from_torch(theirs).eval()


def _torch_masks(mask_kind: str, B: int, T: int, S: int, lengths: list[int]):
    """The same masking in both conventions: (ours, torch's attn_mask, torch's key_padding)."""
    causal = torch.ones(T, S, dtype=torch.bool).tril() if mask_kind in ("causal", "both") else None
    pad = padding_mask(torch.tensor(lengths), S) if mask_kind in ("padding", "both") else None
    ours = None
    if causal is not None or pad is not None:
        ours = combine_masks(*([causal] if causal is not None else []), key_padding=pad)
    return (
        ours,
        None if causal is None else ~causal,
        None if pad is None else ~pad,
    )


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding", "both"])
def test_mha_self_attention_matches_torch(seed: int, mask_kind: str) -> None:
    theirs, ours = _pair(seed)
    B, T = 3, 6
    x = torch.randn(B, T, 16, dtype=F64)
    mask, attn_mask, key_padding = _torch_masks(mask_kind, B, T, T, [6, 4, 1])
    ref_out, ref_w = theirs(
        x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding, average_attn_weights=False
    )
    out, weights = ours(x, mask=mask)
    assert_close(out, ref_out, rtol=0, atol=1e-12)
    assert_close(weights, ref_w, rtol=0, atol=1e-12)
    assert weights.shape == (B, 4, T, T)  # per head: (B, H, T, S)


@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding", "both"])
def test_mha_cross_attention_matches_torch(mask_kind: str) -> None:
    theirs, ours = _pair(2, d_model=24, num_heads=3)
    B, T, S = 2, 5, 9
    query, memory = torch.randn(B, T, 24, dtype=F64), torch.randn(B, S, 24, dtype=F64)
    value = torch.randn(B, S, 24, dtype=F64)
    mask, attn_mask, key_padding = _torch_masks(mask_kind, B, T, S, [9, 3])
    ref_out, ref_w = theirs(
        query,
        memory,
        value,
        attn_mask=attn_mask,
        key_padding_mask=key_padding,
        average_attn_weights=False,
    )
    out, weights = ours(query, memory, value, mask=mask)
    assert_close(out, ref_out, rtol=0, atol=1e-12)
    assert_close(weights, ref_w, rtol=0, atol=1e-12)
    assert_close(ours(query, memory)[0], ours(query, memory, memory)[0])  # value defaults to key


@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding", "both"])
def test_mha_fused_path_equals_explicit_path(mask_kind: str) -> None:
    _, ours = _pair(3)
    x = torch.randn(3, 7, 16, dtype=F64)
    mask, _, _ = _torch_masks(mask_kind, 3, 7, 7, [7, 2, 5])
    out, weights = ours(x, mask=mask)
    fused, none = ours(x, mask=mask, need_weights=False)
    assert none is None
    assert_close(fused, out, rtol=0, atol=1e-12)


def test_mha_to_torch_round_trip_keeps_weights_and_outputs() -> None:
    _, ours = _pair(4, d_model=12, num_heads=3)
    theirs = ours.to_torch()
    assert isinstance(theirs, nn.MultiheadAttention) and theirs.batch_first
    assert theirs.in_proj_weight.dtype == F64 and not theirs.training
    x = torch.randn(2, 5, 12, dtype=F64)
    assert_close(theirs(x, x, x)[0], ours(x)[0], rtol=0, atol=1e-12)
    back = MultiHeadAttention.from_torch(theirs)
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        assert torch.equal(getattr(back, name).weight, getattr(ours, name).weight)
        assert torch.equal(getattr(back, name).bias, getattr(ours, name).bias)


def test_mha_from_torch_keeps_dtype_dropout_and_mode() -> None:
    theirs = nn.MultiheadAttention(8, 2, dropout=0.25, batch_first=True, dtype=F64)
    ours = MultiHeadAttention.from_torch(theirs)
    assert (
        ours.q_proj.weight.dtype == F64
        and ours.q_proj.weight.device == theirs.in_proj_weight.device
    )
    assert ours.dropout == 0.25 and ours.training
    assert not MultiHeadAttention.from_torch(theirs.eval()).training


@pytest.mark.parametrize("num_heads", [1, 8, 64])
def test_mha_param_count_independent_of_heads(num_heads: int) -> None:
    d = 512
    ours = MultiHeadAttention(d, num_heads)
    count = sum(p.numel() for p in ours.parameters())
    assert count == 4 * d * d + 4 * d == 1_050_624
    assert count == sum(p.numel() for p in nn.MultiheadAttention(d, num_heads).parameters())


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_fully_masked_rows_give_zeros_not_nan(need_weights: bool) -> None:
    torch.manual_seed(5)
    ours = MultiHeadAttention(8, 2, bias=False, dtype=F64)
    x = torch.randn(2, 4, 8, dtype=F64, requires_grad=True)
    # Left padding with a causal mask: the first query of item 0 may attend to no key.
    left_pad = torch.tensor([[False, True, True, True], [True, True, True, True]])
    mask = combine_masks(causal_mask(4), key_padding=left_pad)  # (2, 1, 4, 4)
    out, weights = ours(x, mask=mask, need_weights=need_weights)
    assert torch.isfinite(out).all()
    assert torch.equal(out[0, 0], torch.zeros(8, dtype=F64))
    assert out[0, 1:].abs().sum() > 0
    if need_weights:
        assert torch.equal(weights[0, :, 0], torch.zeros(2, 4, dtype=F64))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_mha_fully_masked_row_output_is_the_out_proj_bias() -> None:
    _, ours = _pair(6, d_model=8, num_heads=2)
    x = torch.randn(1, 3, 8, dtype=F64)
    mask = torch.tensor([[True, False, False], [False, False, False], [True, True, True]])
    for need_weights in (True, False):
        out, _ = ours(x, mask=mask, need_weights=need_weights)
        assert_close(out[0, 1], ours.out_proj.bias, rtol=0, atol=0)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_gradcheck(need_weights: bool) -> None:
    torch.manual_seed(7)
    ours = MultiHeadAttention(6, 2, dtype=F64)
    query = torch.randn(2, 3, 6, dtype=F64, requires_grad=True)
    memory = torch.randn(2, 4, 6, dtype=F64, requires_grad=True)
    mask = combine_masks(key_padding=padding_mask([4, 2], 4))

    def f(q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        return ours(q, kv, mask=mask, need_weights=need_weights)[0]

    assert torch.autograd.gradcheck(f, (query, memory))


def test_mha_dropout_only_in_training() -> None:
    torch.manual_seed(8)
    ours = MultiHeadAttention(16, 4, dropout=0.5, dtype=F64)
    x = torch.randn(2, 10, 16, dtype=F64)
    ours.eval()
    for need_weights in (True, False):  # deterministic in eval mode
        assert torch.equal(
            ours(x, need_weights=need_weights)[0], ours(x, need_weights=need_weights)[0]
        )
    assert_close(ours(x)[0], ours(x, need_weights=False)[0], rtol=0, atol=1e-12)
    ours.train()
    _, weights = ours(x)
    assert (weights == 0).float().mean() > 0.3  # weights are dropped, then rescaled by 1/(1-p)
    assert not torch.equal(ours(x, need_weights=False)[0], ours(x, need_weights=False)[0])


def test_mha_split_is_over_features_each_head_sees_every_token() -> None:
    torch.manual_seed(9)
    ours = MultiHeadAttention(12, 3, dtype=F64)
    x = torch.randn(1, 5, 12, dtype=F64)
    _, weights = ours(x)
    assert weights.shape == (1, 3, 5, 5)
    assert (weights > 0).all()  # with no mask, every head attends to every token
    assert_close(weights.sum(-1), torch.ones(1, 3, 5, dtype=F64))
    # Head 0 uses only features 0..3 of q and k: changing W^Q's other rows leaves it unchanged.
    with torch.no_grad():
        ours.q_proj.weight[4:] += 1.0
    _, changed = ours(x)
    assert_close(changed[:, 0], weights[:, 0], rtol=0, atol=0)
    assert not torch.allclose(changed[:, 1:], weights[:, 1:])


@settings(max_examples=15, deadline=None)
@given(
    B=st.integers(1, 3),
    T=st.integers(1, 6),
    S=st.integers(1, 6),
    H=st.sampled_from([1, 2, 3]),
    Dh=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_mha_matches_torch_for_random_shapes(B, T, S, H, Dh, seed) -> None:
    D = H * Dh
    theirs, ours = _pair(seed, d_model=D, num_heads=H)
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(B, T, D, dtype=F64, generator=gen)
    memory = torch.randn(B, S, D, dtype=F64, generator=gen)
    lengths = torch.randint(1, S + 1, (B,), generator=gen)
    pad = padding_mask(lengths, S)
    ref, ref_w = theirs(query, memory, memory, key_padding_mask=~pad, average_attn_weights=False)
    out, weights = ours(query, memory, mask=combine_masks(key_padding=pad))
    fused, _ = ours(query, memory, mask=combine_masks(key_padding=pad), need_weights=False)
    assert out.shape == (B, T, D) and weights.shape == (B, H, T, S)
    assert_close(out, ref, rtol=0, atol=1e-12)
    assert_close(weights, ref_w, rtol=0, atol=1e-12)
    assert_close(fused, out, rtol=0, atol=1e-12)


# Every ValueError, with its message ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(d_model=10, num_heads=3), r"d_model=10 is not divisible by num_heads=3"),
        (dict(d_model=0, num_heads=1), r"d_model must be a positive int, got 0"),
        (dict(d_model=8.0, num_heads=2), r"d_model must be a positive int, got 8.0"),
        (dict(d_model=8, num_heads=0), r"num_heads must be a positive int, got 0"),
        (dict(d_model=8, num_heads=2, dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_mha_constructor_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MultiHeadAttention(**kwargs)


def _forward_error_cases():
    x = torch.randn(2, 3, 8)
    return [
        (dict(query=torch.randn(3, 8)), r"query must have 3 dims \(batch, tokens, d_model\)"),
        (dict(query=[[1.0]]), r"query must be a torch.Tensor, got list"),
        (dict(query=torch.randn(2, 3, 6)), r"query has width 6 .* built with d_model=8"),
        (dict(query=x, key=torch.randn(2, 4, 6)), r"key has width 6"),
        (dict(query=x, key=torch.randn(3, 4, 8)), r"same batch size, got shapes \(2, 3, 8\)"),
        (
            dict(query=x, key=torch.randn(2, 4, 8), value=torch.randn(2, 5, 8)),
            r"same number of tokens S, got shapes \(2, 4, 8\) and \(2, 5, 8\)",
        ),
        (dict(query=x, mask=torch.ones(3, 3)), r"mask must be a bool tensor .* got torch.float32"),
        (
            dict(query=x, mask=torch.ones(2, 3, 3, dtype=torch.bool)),
            r"3-D mask of shape \(2, 3, 3\) is ambiguous .* mask\[:, None\]",
        ),
        (
            dict(query=x, mask=torch.ones(4, 4, dtype=torch.bool)),
            r"mask of shape \(4, 4\) does not broadcast to \(B, H, T, S\) = \(2, 2, 3, 3\)",
        ),
        (
            dict(query=x, mask=torch.ones(1, 1, 1, 3, 3, dtype=torch.bool)),
            r"mask of shape \(1, 1, 1, 3, 3\) does not broadcast",
        ),
    ]


@pytest.mark.parametrize(("kwargs", "match"), _forward_error_cases())
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_forward_errors(kwargs: dict, match: str, need_weights: bool) -> None:
    ours = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=match):
        ours(**kwargs, need_weights=need_weights)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(batch_first=False), r"batch_first=False"),
        (dict(batch_first=True, kdim=4, vdim=4), r"kdim=4 and vdim=4 differ from embed_dim=8"),
        (dict(batch_first=True, add_bias_kv=True), r"add_bias_kv=True or add_zero_attn=True"),
        (dict(batch_first=True, add_zero_attn=True), r"add_bias_kv=True or add_zero_attn=True"),
    ],
)
def test_mha_from_torch_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=r"cannot convert this nn.MultiheadAttention: .*" + match):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, **kwargs))


def test_mha_from_torch_rejects_other_modules() -> None:
    with pytest.raises(ValueError, match=r"expected a torch.nn.MultiheadAttention, got Linear"):
        MultiHeadAttention.from_torch(nn.Linear(4, 4))


def test_mha_from_torch_refuses_half_biased_modules() -> None:
    theirs = nn.MultiheadAttention(8, 2, batch_first=True)
    theirs.in_proj_bias = None
    with pytest.raises(ValueError, match=r"in_proj_bias and out_proj.bias: one is None"):
        MultiHeadAttention.from_torch(theirs)


@pytest.mark.parametrize("masked", [False, True])
def test_mha_without_bias_matches_torch_both_ways(masked: bool) -> None:
    torch.manual_seed(11)
    theirs = nn.MultiheadAttention(16, 4, bias=False, batch_first=True, dtype=F64).eval()
    ours = MultiHeadAttention.from_torch(theirs).eval()
    assert all(p.bias is None for p in (ours.q_proj, ours.k_proj, ours.v_proj, ours.out_proj))
    assert sum(p.numel() for p in ours.parameters()) == 4 * 16**2
    x, pad = torch.randn(3, 6, 16, dtype=F64), padding_mask([6, 4, 1], 6)
    mask = pad[:, None, None, :] if masked else None
    out, weights = ours(x, mask=mask)
    ref, ref_weights = theirs(
        x, x, x, key_padding_mask=~pad if masked else None, average_attn_weights=False
    )
    assert_close(out, ref, rtol=0, atol=1e-12)
    assert_close(weights, ref_weights, rtol=0, atol=1e-12)
    back = ours.to_torch()
    assert back.in_proj_bias is None and back.out_proj.bias is None
    assert_close(back(x, x, x)[0], ours(x)[0], rtol=0, atol=1e-12)
