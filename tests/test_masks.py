"""attention.masks: causal and padding masks (True = may attend), the conventions of each library
and combining masks (chapters 02 and 03)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from attention import (
    MultiHeadAttention,
    causal_mask,
    combine_masks,
    from_additive_mask,
    from_hf_attention_mask,
    invert_mask,
    padding_mask,
    scaled_dot_product_attention,
    to_additive_mask,
    to_hf_attention_mask,
)

# ----------------------------------------------------------------------------- causal_mask


@pytest.mark.parametrize("T", [1, 2, 5, 17])
def test_causal_mask_is_true_on_and_below_diagonal(T):
    mask = causal_mask(T)
    assert mask.dtype == torch.bool and mask.shape == (T, T)
    i, j = torch.meshgrid(torch.arange(T), torch.arange(T), indexing="ij")
    assert torch.equal(mask, j <= i)


def test_causal_mask_blocks_future():
    # Changing the keys and values of future positions must not change earlier outputs.
    T = 6
    q, k, v = (torch.randn(2, T, 8, dtype=torch.float64) for _ in range(3))
    out, _ = scaled_dot_product_attention(q, k, v, causal_mask(T))
    k2, v2 = k.clone(), v.clone()
    k2[:, 4:] += 10.0
    v2[:, 4:] -= 10.0
    out2, _ = scaled_dot_product_attention(q, k2, v2, causal_mask(T))
    assert_close(out[:, :4], out2[:, :4])
    assert not torch.allclose(out[:, 4:], out2[:, 4:])


def test_causal_mask_matches_torch_is_causal():
    q, k, v = (torch.randn(3, 7, 4, dtype=torch.float64) for _ in range(3))
    out, _ = scaled_dot_product_attention(q, k, v, causal_mask(7))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert_close(out, ref)


def test_causal_mask_honours_device_argument():
    assert causal_mask(3).device.type == "cpu"
    assert causal_mask(3, device="cpu").device == torch.device("cpu")
    assert causal_mask(3, device=torch.device("meta")).device.type == "meta"


@pytest.mark.parametrize(("T", "S"), [(1, 1), (1, 5), (3, 7), (4, 4)])
def test_rectangular_causal_mask_is_aligned_to_the_bottom_right(T, S):
    # imported here: torch.nn.attention.bias imports triton, which must not load at collection
    # (chapter 11's tests set TRITON_INTERPRET first)
    from torch.nn.attention.bias import causal_lower_right

    mask = causal_mask(T, S)
    assert mask.shape == (T, S)
    for i in range(T):  # query i is position S - T + i
        assert mask[i].tolist() == [j <= S - T + i for j in range(S)]
    q, k, v = torch.randn(2, T, 4, dtype=torch.float64), *torch.randn(2, 2, S, 4).double()
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(T, S))
    assert_close(scaled_dot_product_attention(q, k, v, causal_mask(T, S))[0], ref)
    assert torch.equal(causal_mask(T), causal_mask(T, T))


def test_rectangular_causal_mask_is_the_last_rows_of_the_square_one():
    """New tokens after a cache see what the same positions see in the full sequence."""
    assert torch.equal(causal_mask(3, 8), causal_mask(8)[-3:])
    top_left = torch.ones(3, 8, dtype=torch.bool).tril()  # is_causal=True's alignment
    assert not torch.equal(causal_mask(3, 8), top_left)


def test_causal_mask_rejects_fewer_keys_than_queries():
    with pytest.raises(ValueError, match="S=2 keys is fewer than T=3 queries"):
        causal_mask(3, 2)
    with pytest.raises(ValueError, match="S must be a positive int, got 0"):
        causal_mask(3, 0)


@pytest.mark.parametrize("T", [0, -2, 2.0, "3", True, None])
def test_causal_mask_rejects_bad_length(T):
    with pytest.raises(ValueError, match=r"T must be a positive int, got"):
        causal_mask(T)


# ----------------------------------------------------------------------------- padding_mask


def test_padding_mask_marks_real_tokens():
    mask = padding_mask([3, 1, 4])
    expected = torch.tensor(
        [
            [True, True, True, False],
            [True, False, False, False],
            [True, True, True, True],
        ]
    )
    assert mask.dtype == torch.bool
    assert torch.equal(mask, expected)


def test_padding_mask_max_len_defaults_to_longest():
    assert padding_mask(torch.tensor([2, 5, 3])).shape == (3, 5)


def test_padding_mask_explicit_max_len_pads_further():
    mask = padding_mask(torch.tensor([2, 0]), max_len=4)
    assert torch.equal(mask, torch.tensor([[True, True, False, False], [False] * 4]))


def test_padding_mask_is_on_lengths_device_cpu():
    assert padding_mask(torch.tensor([1, 2])).device == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_padding_mask_is_on_lengths_device_cuda():
    mask = padding_mask(torch.tensor([1, 3], device="cuda"))
    assert mask.device.type == "cuda"
    assert mask.cpu().tolist() == [[True, False, False], [True, True, True]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_causal_mask_on_cuda_matches_cpu():
    assert torch.equal(causal_mask(5, device="cuda").cpu(), causal_mask(5))


def test_padding_mask_makes_pad_tokens_change_nothing():
    q, k, v = (torch.randn(2, 5, 8, dtype=torch.float64) for _ in range(3))
    mask = padding_mask([3, 5])[:, None, :]  # (B, S) -> (B, 1, S): mask the keys
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    k2, v2 = k.clone(), v.clone()
    k2[0, 3:] = 99.0
    v2[0, 3:] = -99.0
    out2, _ = scaled_dot_product_attention(q, k2, v2, mask)
    assert_close(out, out2)
    short, _ = scaled_dot_product_attention(q[:1], k[:1, :3], v[:1, :3])
    assert_close(out[:1], short)


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 9), min_size=1, max_size=6),
    extra=st.integers(0, 3),
)
def test_padding_mask_row_sums_are_lengths(lengths, extra):
    max_len = max(lengths) + extra
    mask = padding_mask(lengths, max_len=max_len)
    assert mask.shape == (len(lengths), max_len)
    assert mask.sum(-1).tolist() == lengths
    # Real tokens come first: each row is a run of True then a run of False.
    assert torch.equal(mask, mask.cumprod(-1).bool())


@pytest.mark.parametrize(
    ("lengths", "match"),
    [
        ([[1, 2], [3, 4]], r"non-empty 1-D sequence, got shape \(2, 2\)"),
        ([], r"non-empty 1-D sequence, got shape \(0,\)"),
        (torch.tensor(3), r"non-empty 1-D sequence, got shape \(\)"),
        ([2, -1], r"lengths must be >= 0, got \[2, -1\]"),
        ([2.0, 3.0], r"lengths must be integers, got dtype torch.float32"),
        (torch.tensor([True, False]), r"lengths must be integers, got dtype torch.bool"),
    ],
    ids=["2-D", "empty", "0-D", "negative", "float", "bool"],
)
def test_padding_mask_rejects_bad_lengths(lengths, match):
    with pytest.raises(ValueError, match=match):
        padding_mask(lengths)


@pytest.mark.parametrize("max_len", [2, 0, -1])
def test_padding_mask_rejects_max_len_shorter_than_longest(max_len):
    with pytest.raises(
        ValueError, match=rf"max_len={max_len} is shorter than the longest length 3"
    ):
        padding_mask([1, 3], max_len=max_len)


@pytest.mark.parametrize("max_len", [4.0, True, "4"])
def test_padding_mask_rejects_non_int_max_len(max_len):
    with pytest.raises(ValueError, match=r"max_len must be an int, got"):
        padding_mask([1, 3], max_len=max_len)


# ----------------------------------------------------------------------------- conventions

F64 = torch.float64


def _qkv(seed: int, B: int = 2, H: int = 3, T: int = 5, S: int = 5, Dh: int = 4):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, H, n, Dh, dtype=F64, generator=gen) for n in (T, S, S))


def test_invert_mask_turns_ours_into_torch_mha_convention() -> None:
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(8, 2, batch_first=True, dtype=F64).eval()
    ours = MultiHeadAttention.from_torch(theirs).eval()
    x = torch.randn(3, 6, 8, dtype=F64)
    pad, causal = padding_mask([6, 4, 2]), causal_mask(6)
    ref = theirs(x, x, x, attn_mask=invert_mask(causal), key_padding_mask=invert_mask(pad))[0]
    out = ours(x, mask=combine_masks(causal, key_padding=pad))[0]
    assert_close(out, ref, rtol=0, atol=1e-12)
    assert torch.equal(invert_mask(invert_mask(pad)), pad)  # its own inverse


def test_additive_mask_gives_the_same_attention_as_the_bool_mask() -> None:
    q, k, v = _qkv(1)
    mask = causal_mask(5)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    additive = to_additive_mask(mask, F64)
    assert additive.dtype == F64
    assert torch.equal(additive == 0, mask) and torch.isneginf(additive[~mask]).all()
    assert_close(F.scaled_dot_product_attention(q, k, v, attn_mask=additive), ref)
    assert_close(scaled_dot_product_attention(q, k, v, mask)[0], ref, rtol=0, atol=1e-12)
    big_negative = to_additive_mask(mask, F64, fill=-1e9)
    assert_close(F.scaled_dot_product_attention(q, k, v, attn_mask=big_negative), ref)


def test_additive_fill_of_minus_1e4_is_too_weak_for_large_float32_logits() -> None:
    scores = torch.tensor([[3e4, 1e4, 0.0]])  # float32 logits of ~1e4
    mask = torch.tensor([[False, True, True]])  # the largest logit is masked
    leaky = torch.softmax(scores + to_additive_mask(mask, fill=-1e4), dim=-1)
    exact = torch.softmax(scores + to_additive_mask(mask), dim=-1)
    assert leaky[0, 0] > 0.99  # the "masked" key still takes (nearly) all the weight
    assert exact[0, 0] == 0 and exact[0, 1] == 1


def test_from_additive_mask_inverts_to_additive_mask() -> None:
    mask = torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(2)) < 0.5
    for fill in (float("-inf"), -1e9, torch.finfo(torch.float32).min):
        assert torch.equal(from_additive_mask(to_additive_mask(mask, fill=fill)), mask)
    square = nn.Transformer.generate_square_subsequent_mask(4)  # PyTorch's own causal mask
    assert torch.equal(from_additive_mask(square), causal_mask(4))


def test_hf_attention_mask_is_a_padding_mask() -> None:
    hf = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])  # as a tokenizer returns it
    ours = from_hf_attention_mask(hf)
    assert ours.dtype == torch.bool
    assert torch.equal(ours, padding_mask([3, 5]))
    assert torch.equal(from_hf_attention_mask(hf.float()), ours)
    assert torch.equal(from_hf_attention_mask(hf.bool()), ours)
    back = to_hf_attention_mask(ours)
    assert back.dtype == torch.long and torch.equal(back, hf)


def test_every_convention_gives_the_same_output() -> None:
    """The atlas: one masking (padding + causal) written in four conventions."""
    torch.manual_seed(3)
    theirs = nn.MultiheadAttention(12, 3, batch_first=True, dtype=F64).eval()
    ours = MultiHeadAttention.from_torch(theirs).eval()
    x = torch.randn(2, 5, 12, dtype=F64)
    hf = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]])
    pad = from_hf_attention_mask(hf)
    mask = combine_masks(causal_mask(5), key_padding=pad)  # (B, 1, T, S), True = may attend
    assert mask.shape == (2, 1, 5, 5)
    ref = ours(x, mask=mask)[0]
    mha_bool = theirs(x, x, x, attn_mask=invert_mask(causal_mask(5)), key_padding_mask=~pad)[0]
    mha_float = theirs(
        x, x, x, attn_mask=to_additive_mask(mask, F64).repeat(1, 3, 1, 1).flatten(0, 1)
    )[0]
    fused = ours(x, mask=mask, need_weights=False)[0]
    for out in (mha_bool, mha_float, fused):
        assert_close(out, ref, rtol=0, atol=1e-12)


def test_combine_masks_pairs_batch_with_batch_not_with_queries() -> None:
    pad = padding_mask([2, 4, 3])  # (3, 4)
    causal = causal_mask(4)  # (4, 4)
    both = combine_masks(causal, key_padding=pad)
    assert both.shape == (3, 1, 4, 4)
    flat = combine_masks(causal, key_padding=pad, head_dim=False)
    assert flat.shape == (3, 4, 4)
    for b in range(3):
        expected = causal & pad[b][None, :]
        assert torch.equal(both[b, 0], expected) and torch.equal(flat[b], expected)
    assert torch.equal(combine_masks(causal), causal)
    assert torch.equal(combine_masks(key_padding=pad), pad[:, None, None, :])


@settings(max_examples=20, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    data=st.data(),
)
def test_combine_masks_is_a_broadcast_and(shape: list[int], data) -> None:
    seed = data.draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    # A second shape that broadcasts against the first: some dims set to 1, some dropped.
    other = [data.draw(st.sampled_from([n, 1])) for n in shape][
        data.draw(st.integers(0, len(shape) - 1)) :
    ]
    a = torch.rand(shape, generator=gen) < 0.5
    b = torch.rand(other, generator=gen) < 0.5
    assert torch.equal(combine_masks(a, b), a & b)
    assert torch.equal(invert_mask(combine_masks(a, b)), ~a | ~b)
    additive = to_additive_mask(combine_masks(a, b), F64)
    assert torch.equal(from_additive_mask(additive), a & b)


@settings(max_examples=15, deadline=None)
@given(B=st.integers(1, 4), S=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_hf_round_trip_for_random_lengths(B: int, S: int, seed: int) -> None:
    lengths = torch.randint(0, S + 1, (B,), generator=torch.Generator().manual_seed(seed))
    pad = padding_mask(lengths, S)
    hf = to_hf_attention_mask(pad)
    assert torch.equal(hf.sum(-1), lengths)
    assert torch.equal(from_hf_attention_mask(hf), pad)


# Every ValueError, with its message ------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: invert_mask(torch.ones(2, 2)), r"mask must be a bool tensor, got torch.float32"),
        (lambda: invert_mask([[True]]), r"mask must be a bool tensor, got list"),
        (
            lambda: to_additive_mask(torch.ones(2, 2)),
            r"mask must be a bool tensor, got torch.float32",
        ),
        (
            lambda: to_additive_mask(causal_mask(2), torch.long),
            r"dtype must be a floating dtype, got torch.int64",
        ),
        (
            lambda: to_additive_mask(causal_mask(2), fill=1e9),
            r"fill must be negative .* got 1000000000.0",
        ),
        (
            lambda: from_additive_mask(causal_mask(2)),
            r"an additive mask must be a float tensor, got torch.bool",
        ),
        (
            lambda: from_additive_mask(torch.tensor([0.0, 1.0])),
            r"holds 0 \(may attend\) and negative values .* got values in \[0.0, 1.0\]",
        ),
        (
            lambda: from_additive_mask(torch.tensor([0.0, float("nan")])),
            r"holds 0 \(may attend\) and negative values",
        ),
        (
            lambda: from_hf_attention_mask([[1, 0]]),
            r"attention_mask must be a real tensor of 0s and 1s, got list",
        ),
        (
            lambda: from_hf_attention_mask(torch.ones(2, 3, dtype=torch.complex64)),
            r"attention_mask must be a real tensor of 0s and 1s, got torch.complex64",
        ),
        (
            lambda: from_hf_attention_mask(torch.ones(2, 3, 4)),
            r"attention_mask must have shape \(B, S\), got \(2, 3, 4\)",
        ),
        (
            lambda: from_hf_attention_mask(torch.tensor([[1, 2, 0]])),
            r"attention_mask must hold only 0s and 1s, got values \[0, 1, 2\]",
        ),
        (
            lambda: to_hf_attention_mask(torch.ones(2, 2)),
            r"mask must be a bool tensor, got torch.float32",
        ),
        (
            lambda: to_hf_attention_mask(causal_mask(2)[None]),
            r"mask must have shape \(B, S\), got \(1, 2, 2\)",
        ),
        (lambda: combine_masks(), r"combine_masks needs at least one mask"),
        (
            lambda: combine_masks(causal_mask(2), torch.ones(2, 2)),
            r"mask 1 must be a bool tensor, got torch.float32",
        ),
        (
            lambda: combine_masks(causal_mask(3), causal_mask(4)),
            r"masks of shapes \[\(3, 3\), \(4, 4\)\] do not broadcast together",
        ),
        (
            lambda: combine_masks(causal_mask(3), key_padding=padding_mask([3])[None]),
            r"key_padding must have shape \(B, S\), got \(1, 1, 3\)",
        ),
        (
            lambda: combine_masks(causal_mask(3), key_padding=torch.ones(2, 3)),
            r"key_padding must be a bool tensor, got torch.float32",
        ),
    ],
)
def test_mask_helper_errors(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
