"""attention.encoder: the encoder layer and stack equal PyTorch's (chapter 06)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from attention import (
    Encoder,
    EncoderLayer,
    padding_mask,
)

from .test_layers import _randomise_norms, _torch_encoder_layer

F64 = torch.float64


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_encoder_layer_matches_torch(norm_first: bool, masked: bool) -> None:
    theirs = _torch_encoder_layer(0, norm_first=norm_first)
    ours = EncoderLayer.from_torch(theirs).eval()
    x = torch.randn(3, 7, 16, dtype=F64)
    pad = padding_mask([7, 4, 2], 7)
    ref = theirs(x, src_key_padding_mask=~pad if masked else None)
    out = ours(x, mask=pad[:, None, None, :] if masked else None)
    assert_close(out, ref, rtol=0, atol=1e-12)
    assert ours.norm_first is norm_first


def test_encoder_stack_matches_torch_transformer_encoder() -> None:
    torch.manual_seed(4)
    layer = nn.TransformerEncoderLayer(16, 2, 32, 0.0, batch_first=True, dtype=F64)
    theirs = nn.TransformerEncoder(layer, num_layers=3, enable_nested_tensor=False)
    _randomise_norms(theirs).eval()
    ours = Encoder(3, 16, 2, 32, dtype=F64).eval()
    ours.layers = nn.ModuleList(EncoderLayer.from_torch(m) for m in theirs.layers)
    x, pad = torch.randn(2, 5, 16, dtype=F64), padding_mask([5, 3], 5)
    ref = theirs(x, src_key_padding_mask=~pad)
    assert_close(ours(x, pad[:, None, None, :]), ref, rtol=0, atol=1e-12)


def test_encoder_output_has_one_vector_per_token_not_a_fixed_length() -> None:
    enc = Encoder(2, 16, 4, 32).eval()
    for S in (1, 5, 23):
        memory, weights = enc.forward_with_weights(torch.randn(2, S, 16))
        assert memory.shape == (2, S, 16)  # z = (z_1, ..., z_S): as long as the input
        assert weights.shape == (2, 2, 4, S, S)
