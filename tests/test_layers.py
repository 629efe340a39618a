"""Tests of the encoder/decoder layers and stacks and of the whole models (chapter 06)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from attention import (
    Decoder,
    DecoderLayer,
    DecoderOnlyLM,
    Encoder,
    EncoderLayer,
    FeedForward,
    Transformer,
    causal_mask,
    combine_masks,
    padding_mask,
    sinusoidal_positional_encoding,
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


def test_gelu_layers_match_torch() -> None:
    enc = _torch_encoder_layer(2, activation="gelu")
    dec = _torch_decoder_layer(3, activation="gelu")
    x, y = torch.randn(2, 6, 16, dtype=F64), torch.randn(2, 4, 16, dtype=F64)
    assert_close(EncoderLayer.from_torch(enc)(x), enc(x), rtol=0, atol=1e-12)
    out = DecoderLayer.from_torch(dec)(y, x, self_mask=causal_mask(4))
    assert_close(out, dec(y, x, tgt_mask=~causal_mask(4)), rtol=0, atol=1e-12)


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


def test_embeddings_are_scaled_by_sqrt_d_model_and_add_sinusoids() -> None:
    model = Transformer(11, 13, d_model=16, num_heads=2, dtype=F64).eval()
    ids = torch.randint(0, 13, (2, 6))
    expected = model.tgt_embed.tokens.weight[ids] * math.sqrt(16)
    expected = expected + sinusoidal_positional_encoding(6, 16, dtype=F64)
    assert_close(model.tgt_embed(ids), expected, rtol=0, atol=1e-12)
    assert model.lm_head.weight is model.tgt_embed.tokens.weight  # tied, [V] §3.4
    untied = Transformer(11, 13, d_model=16, tie_embeddings=False)
    assert untied.lm_head.weight is not untied.tgt_embed.tokens.weight


def test_transformer_decoder_never_sees_future_targets() -> None:
    model = Transformer(12, 12, d_model=16, num_heads=2, dtype=F64).eval()
    src, tgt = torch.randint(3, 12, (2, 7)), torch.randint(3, 12, (2, 5))
    future = tgt.clone()
    future[:, 3:] = 7
    assert_close(model(src, future)[:, :3], model(src, tgt)[:, :3], rtol=0, atol=0)
    assert not torch.allclose(model(src, future)[:, 3:], model(src, tgt)[:, 3:])


def test_source_padding_content_never_reaches_the_logits() -> None:
    model = Transformer(12, 12, d_model=16, num_heads=2, pad_id=0, dtype=F64).eval()
    src = torch.randint(3, 12, (2, 7))
    src[1, 4:] = 0
    memory = model.encode(src)
    altered = memory.clone()
    altered[1, 4:] = torch.randn(3, 16, dtype=F64)  # what the pad positions hold
    tgt = torch.randint(3, 12, (2, 5))
    assert_close(model.decode(tgt, altered, src), model.decode(tgt, memory, src), rtol=0, atol=0)


def test_attention_maps_have_one_map_per_layer_and_rows_that_sum_to_one() -> None:
    model = Transformer(12, 12, d_model=16, num_heads=2, num_encoder_layers=3).eval()
    src = torch.randint(3, 12, (2, 7))
    src[0, 5:] = 0
    maps = model.attention_maps(src, torch.randint(3, 12, (2, 4)))
    assert maps["encoder"].shape == (3, 2, 2, 7, 7)
    assert maps["decoder_self"].shape == (2, 2, 2, 4, 4)
    assert maps["cross"].shape == (2, 2, 2, 4, 7)
    assert_close(maps["cross"].sum(-1), torch.ones(2, 2, 2, 4))
    assert (maps["cross"][:, 0, :, :, 5:] == 0).all()  # no weight on source padding
    assert (maps["decoder_self"].triu(1) == 0).all()  # no weight on the future


def test_model_input_errors_name_the_values() -> None:
    model = Transformer(10, 10, d_model=8, num_heads=2, max_len=6)
    with pytest.raises(ValueError, match=r"positions 0..6 exceed max_len=6"):
        model(torch.ones(1, 7, dtype=torch.long), torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 10\), got \[1, 10\]"):
        model(torch.tensor([[1, 10]]), torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token ids must be an int tensor \(B, T\), got"):
        model(torch.ones(1, 3), torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="vocab_size must be a positive int, got 0"):
        DecoderOnlyLM(0)


def test_decoder_only_lm_is_causal() -> None:
    lm = DecoderOnlyLM(20, d_model=16, num_heads=4, num_kv_heads=2, dtype=F64).eval()
    ids = torch.randint(0, 20, (2, 9))
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 20
    assert_close(lm(changed)[:, :6], lm(ids)[:, :6], rtol=0, atol=0)
    assert lm(ids).shape == (2, 9, 20)
