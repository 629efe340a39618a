"""attention.models: the encoder–decoder Transformer and the decoder-only LM (chapter 06)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from attention import (
    DecoderOnlyLM,
    Transformer,
    sinusoidal_positional_encoding,
)

F64 = torch.float64


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
