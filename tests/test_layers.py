"""attention.layers: the feed-forward block, the shared layer base (residual + LayerNorm,
from_torch) and the stacks (chapter 06)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from attention import (
    Decoder,
    DecoderLayer,
    Encoder,
    EncoderLayer,
    FeedForward,
    causal_mask,
    padding_mask,
)

F64 = torch.float64


def _randomise_norms(m: nn.Module) -> nn.Module:
    """Give every LayerNorm non-trivial weights, so that a norm left out would be noticed."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.LayerNorm):
                mod.weight.normal_(1.0, 0.2)
                if mod.bias is not None:
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


ACTIVATIONS = {
    "relu": ["relu", F.relu, nn.ReLU()],
    "gelu": ["gelu", F.gelu, nn.GELU(), nn.GELU(approximate="none")],
}


@pytest.mark.parametrize(
    ("name", "act"), [(name, act) for name, acts in ACTIVATIONS.items() for act in acts]
)
@pytest.mark.parametrize("norm_first", [False, True])
def test_activation_strings_functions_and_modules_convert(name, act, norm_first) -> None:
    enc = _torch_encoder_layer(5, norm_first=norm_first, activation=act)
    dec = _torch_decoder_layer(6, norm_first=norm_first, activation=act)
    ours_enc, ours_dec = EncoderLayer.from_torch(enc), DecoderLayer.from_torch(dec)
    assert ours_enc.ffn.activation == ours_dec.ffn.activation == name
    x, y = torch.randn(2, 6, 16, dtype=F64), torch.randn(2, 4, 16, dtype=F64)
    assert_close(ours_enc(x), enc(x), rtol=0, atol=1e-12)  # torch's slow path (grad enabled)
    with torch.no_grad():  # torch's fused fast path, which reads activation_relu_or_gelu
        assert_close(ours_enc(x), enc(x), rtol=0, atol=1e-12)
    out = ours_dec(y, x, self_mask=causal_mask(4))
    assert_close(out, dec(y, x, tgt_mask=~causal_mask(4)), rtol=0, atol=1e-12)


def test_tanh_gelu_is_refused_because_torch_computes_it_two_ways() -> None:
    enc = _torch_encoder_layer(7, activation=nn.GELU(approximate="tanh"))
    x = torch.randn(2, 6, 16, dtype=F64)
    with torch.no_grad():  # the fast path: exact gelu, whatever approximate says
        fast = enc(x)
    assert (enc(x) - fast).abs().max() > 1e-6  # the slow path: the tanh approximation
    with pytest.raises(ValueError, match=r"activation GELU\(approximate='tanh'\)"):
        EncoderLayer.from_torch(enc)


@pytest.mark.parametrize("norm_first", [False, True])
def test_layers_without_biases_match_torch(norm_first: bool) -> None:
    enc = _torch_encoder_layer(8, norm_first=norm_first, bias=False)
    dec = _torch_decoder_layer(9, norm_first=norm_first, bias=False)
    ours_enc, ours_dec = EncoderLayer.from_torch(enc), DecoderLayer.from_torch(dec)
    assert all(
        mod.bias is None
        for layer in (ours_enc, ours_dec)
        for mod in layer.modules()
        if isinstance(mod, (nn.Linear, nn.LayerNorm))
    )
    count = sum(p.numel() for p in enc.parameters())
    assert sum(p.numel() for p in ours_enc.parameters()) == count
    x, y = torch.randn(3, 7, 16, dtype=F64), torch.randn(3, 5, 16, dtype=F64)
    pad = padding_mask([7, 4, 2], 7)
    ref = enc(x, src_key_padding_mask=~pad)
    assert_close(ours_enc(x, mask=pad[:, None, None, :]), ref, rtol=0, atol=1e-12)
    ref = dec(y, x, tgt_mask=~causal_mask(5), memory_key_padding_mask=~pad)
    out = ours_dec(y, x, self_mask=causal_mask(5), cross_mask=pad[:, None, None, :])
    assert_close(out, ref, rtol=0, atol=1e-12)


def test_pre_ln_stack_without_biases_ends_with_a_norm_without_bias() -> None:
    enc = Encoder(2, 8, 2, 16, norm_first=True, bias=False)
    assert isinstance(enc.norm, nn.LayerNorm) and enc.norm.bias is None


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
    with pytest.raises(ValueError, match=r"activation .* \(only relu and exact gelu convert"):
        DecoderLayer.from_torch(nn.TransformerDecoderLayer(8, 2, 16, activation=torch.tanh))
    mixed = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    mixed.linear1 = nn.Linear(8, 16, bias=False)
    with pytest.raises(ValueError, match="some sublayers have biases and others not"):
        EncoderLayer.from_torch(mixed)
    with pytest.raises(ValueError, match="expected a torch.nn.TransformerDecoderLayer, got Linear"):
        DecoderLayer.from_torch(nn.Linear(2, 2))
    layer, lm_block = DecoderLayer(8, 2, 16), DecoderLayer(8, 2, 16, cross_attention=False)
    with pytest.raises(ValueError, match="this layer has cross-attention: pass memory"):
        layer(torch.randn(1, 3, 8))
    with pytest.raises(ValueError, match="no cross-attention .*: memory must be None"):
        lm_block(torch.randn(1, 3, 8), torch.randn(1, 3, 8))
