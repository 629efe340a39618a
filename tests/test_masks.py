"""attention.masks: causal and padding masks (True = may attend)."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.attention.bias import causal_lower_right
from torch.testing import assert_close

from attention import causal_mask, padding_mask, scaled_dot_product_attention

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
