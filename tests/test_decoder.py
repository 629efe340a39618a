"""attention.decoder: the decoder layer equals PyTorch's, masks included (chapter 06)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from attention import (
    DecoderLayer,
    causal_mask,
    combine_masks,
    padding_mask,
)

from .test_layers import _torch_decoder_layer

F64 = torch.float64


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch_with_causal_and_padding_masks(norm_first: bool) -> None:
    theirs = _torch_decoder_layer(1, norm_first=norm_first)
    ours = DecoderLayer.from_torch(theirs).eval()
    tgt, memory = torch.randn(3, 5, 16, dtype=F64), torch.randn(3, 8, 16, dtype=F64)
    tgt_pad, src_pad = padding_mask([5, 3, 1], 5), padding_mask([8, 6, 2], 8)
    ref = theirs(
        tgt,
        memory,
        tgt_mask=~causal_mask(5),
        tgt_key_padding_mask=~tgt_pad,
        memory_key_padding_mask=~src_pad,
    )
    self_mask = combine_masks(causal_mask(5), key_padding=tgt_pad)  # (B, 1, T, T)
    out = ours(tgt, memory, self_mask=self_mask, cross_mask=src_pad[:, None, None, :])
    assert_close(out, ref, rtol=0, atol=1e-12)


@settings(max_examples=12, deadline=None)
@given(
    B=st.integers(1, 3),
    T=st.integers(1, 6),
    S=st.integers(1, 7),
    H=st.sampled_from([1, 2, 4]),
    Dh=st.integers(1, 4),
    norm_first=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_decoder_layer_matches_torch_for_random_shapes(B, T, S, H, Dh, norm_first, seed) -> None:
    theirs = _torch_decoder_layer(seed, D=H * Dh, H=H, norm_first=norm_first)
    ours = DecoderLayer.from_torch(theirs).eval()
    gen = torch.Generator().manual_seed(seed)
    tgt = torch.randn(B, T, H * Dh, dtype=F64, generator=gen)
    memory = torch.randn(B, S, H * Dh, dtype=F64, generator=gen)
    src_pad = padding_mask(torch.randint(1, S + 1, (B,), generator=gen), S)
    ref = theirs(tgt, memory, tgt_mask=~causal_mask(T), memory_key_padding_mask=~src_pad)
    out = ours(tgt, memory, self_mask=causal_mask(T), cross_mask=src_pad[:, None, None, :])
    assert_close(out, ref, rtol=0, atol=1e-12)
