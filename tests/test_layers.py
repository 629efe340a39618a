"""attention.layers: the feed-forward block, the shared layer base (residual + LayerNorm,
from_torch) and the stacks (chapter 06)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from attention import (
    Decoder,
    DecoderLayer,
    Encoder,
    EncoderLayer,
    FeedForward,
    causal_mask,
)

F64 = torch.float64


def _randomise_norms(m: nn.Module) -> nn.Module:
    """Give every LayerNorm non-trivial weights, so that a norm left out would be noticed."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.LayerNorm):
                mod.weight.normal_(1.0, 0.2)
                mod.bias.normal_(0.0, 0.2)
    return m


def _torch_encoder_layer(seed: int, D: int = 16, H: int = 4, norm_first: bool = False, **kw):
    torch.manual_seed(seed)
    m = nn.TransformerEncoderLayer(
        D, H, 2 * D, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=F64, **kw
    )
    return _randomise_norms(m).eval()


def _torch_decoder_layer(seed: int, D: int = 16, H: int = 4, norm_first: bool = False, **kw):
    torch.manual_seed(seed)
    m = nn.TransformerDecoderLayer(
        D, H, 2 * D, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=F64, **kw
    )
    return _randomise_norms(m).eval()


def test_gelu_layers_match_torch() -> None:
    enc = _torch_encoder_layer(2, activation="gelu")
    dec = _torch_decoder_layer(3, activation="gelu")
    x, y = torch.randn(2, 6, 16, dtype=F64), torch.randn(2, 4, 16, dtype=F64)
    assert_close(EncoderLayer.from_torch(enc)(x), enc(x), rtol=0, atol=1e-12)
    out = DecoderLayer.from_torch(dec)(y, x, self_mask=causal_mask(4))
    assert_close(out, dec(y, x, tgt_mask=~causal_mask(4)), rtol=0, atol=1e-12)


def test_pre_ln_stacks_end_with_a_layer_norm_and_post_ln_stacks_do_not() -> None:
    assert Encoder(1, 8, 2, 16).norm is None and Decoder(1, 8, 2, 16).norm is None
    assert isinstance(Encoder(1, 8, 2, 16, norm_first=True).norm, nn.LayerNorm)
    assert isinstance(Decoder(1, 8, 2, 16, norm_first=True).norm, nn.LayerNorm)


def test_feed_forward_acts_on_each_token_independently() -> None:
    ffn = FeedForward(8, 32, activation="gelu").double()
    x = torch.randn(2, 5, 8, dtype=F64)
    per_token = torch.stack([ffn(x[:, t : t + 1])[:, 0] for t in range(5)], dim=1)
    assert_close(ffn(x), per_token, rtol=0, atol=1e-14)


def test_layer_errors_name_the_problem() -> None:
    with pytest.raises(
        ValueError, match=r"activation must be one of \['gelu', 'relu'\], got 'tanh'"
    ):
        FeedForward(8, 16, activation="tanh")
    with pytest.raises(ValueError, match="d_ff must be a positive int, got 0"):
        FeedForward(8, 0)
    with pytest.raises(ValueError, match="num_layers must be a positive int, got 0"):
        Encoder(0, 8, 2, 16)
    with pytest.raises(ValueError, match="num_layers must be a positive int, got 1.5"):
        Decoder(1.5, 8, 2, 16)
    with pytest.raises(ValueError, match="batch_first=False"):
        EncoderLayer.from_torch(nn.TransformerEncoderLayer(8, 2, 16))
    with pytest.raises(ValueError, match=r"activation .* \(only 'relu' and 'gelu' convert\)"):
        DecoderLayer.from_torch(nn.TransformerDecoderLayer(8, 2, 16, activation=torch.tanh))
    with pytest.raises(ValueError, match="expected a torch.nn.TransformerDecoderLayer, got Linear"):
        DecoderLayer.from_torch(nn.Linear(2, 2))
    layer, lm_block = DecoderLayer(8, 2, 16), DecoderLayer(8, 2, 16, cross_attention=False)
    with pytest.raises(ValueError, match="this layer has cross-attention: pass memory"):
        layer(torch.randn(1, 3, 8))
    with pytest.raises(ValueError, match="no cross-attention .*: memory must be None"):
        lm_block(torch.randn(1, 3, 8), torch.randn(1, 3, 8))
