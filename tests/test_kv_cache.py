"""attention.kv_cache and the cache path of MultiHeadAttention (chapter 08)."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from attention import (
    DecoderOnlyLM,
    GroupedQueryAttention,
    KVCache,
    LayerCache,
    MultiHeadAttention,
    Transformer,
    causal_mask,
    kv_cache_bytes,
)

F64 = torch.float64


def _lm(seed: int, num_kv_heads: int | None = None) -> DecoderOnlyLM:
    torch.manual_seed(seed)
    return DecoderOnlyLM(23, d_model=32, num_heads=4, num_layers=2, num_kv_heads=num_kv_heads,
                         dtype=F64)  # fmt: skip


@pytest.mark.parametrize("num_kv_heads", [4, 2, 1])  # MHA, GQA, MQA: one path
@pytest.mark.parametrize("need_weights", [True, False])
def test_cached_self_attention_equals_causal_attention_over_the_sequence(
    num_kv_heads: int, need_weights: bool
) -> None:
    torch.manual_seed(0)
    attn = GroupedQueryAttention(16, 4, num_kv_heads, dtype=F64).eval()
    x = torch.randn(2, 7, 16, dtype=F64)  # (B, T, D)
    full, full_w = attn(x, mask=causal_mask(7))
    cache = LayerCache()
    chunks = [x[:, :3]] + [x[:, t : t + 1] for t in range(3, 7)]  # a prefill, then one by one
    outs = [attn(chunk, cache=cache, need_weights=need_weights) for chunk in chunks]
    assert_close(torch.cat([o for o, _ in outs], dim=1), full, rtol=0, atol=1e-12)
    assert cache.self_k.shape == cache.self_v.shape == (2, num_kv_heads, 7, 4)  # (B, Hkv, S, Dh)
    if need_weights:
        assert_close(outs[0][1], full_w[:, :, :3, :3])  # the prefill: bottom-right causal
        assert_close(outs[-1][1], full_w[:, :, 6:, :])  # the last token sees all 7 keys
    else:
        assert all(w is None for _, w in outs)


def test_cached_cross_attention_projects_the_memory_once() -> None:
    torch.manual_seed(1)
    attn = MultiHeadAttention(16, 4, dtype=F64).eval()
    y, memory = torch.randn(2, 5, 16, dtype=F64), torch.randn(2, 6, 16, dtype=F64)
    cache = LayerCache()
    outs = [attn(y[:, t : t + 1], memory, cache=cache)[0] for t in range(5)]
    assert_close(torch.cat(outs, dim=1), attn(y, memory)[0], rtol=0, atol=1e-12)
    k = cache.cross_k
    attn(y[:, :1], memory * 0, cache=cache)  # the memory is assumed fixed: projected once
    assert cache.cross_k is k and cache.self_k is None


def test_cache_errors_name_the_problem() -> None:
    attn = MultiHeadAttention(8, 2)
    x = torch.randn(1, 3, 8)
    with pytest.raises(ValueError, match="pass mask=None with a cache"):
        attn(x, mask=causal_mask(3), cache=LayerCache())
    with pytest.raises(ValueError, match="cache must be a LayerCache, got KVCache"):
        attn(x, cache=KVCache.empty(1))
    with pytest.raises(ValueError, match="num_layers must be a positive int, got 0"):
        KVCache.empty(0)


def test_cache_structure_and_size() -> None:
    lm = _lm(2, num_kv_heads=2).eval()
    cache = KVCache.empty(2)
    assert cache.seq_len == 0 and cache.nbytes() == 0
    lm(torch.randint(0, 23, (3, 5)), cache=cache)
    lm(torch.randint(0, 23, (3, 1)), cache=cache)
    assert len(cache.layers) == 2 and all(isinstance(c, LayerCache) for c in cache.layers)
    for layer in cache.layers:
        assert layer.self_k.shape == layer.self_v.shape == (3, 2, 6, 8)  # (B, Hkv, S, Dh)
        assert layer.cross_k is None and layer.cross_v is None  # decoder-only: no cross
    assert cache.nbytes() == kv_cache_bytes(2, 2, 8, 6, batch_size=3, dtype=F64)


def test_seq2seq_cache_keeps_the_source_keys_and_values_fixed() -> None:
    torch.manual_seed(4)
    model = Transformer(15, 17, d_model=32, num_heads=4, dtype=F64).eval()
    src = torch.randint(3, 15, (2, 6))
    memory, cache = model.encode(src), KVCache.empty(2)
    tgt = torch.tensor([[1, 5, 6, 7], [1, 8, 9, 10]])
    steps = [model.decode(tgt[:, t : t + 1], memory, src, cache) for t in range(4)]
    assert_close(torch.cat(steps, 1), model.decode(tgt, memory, src), rtol=0, atol=1e-12)
    for layer in cache.layers:
        assert layer.cross_k.shape == (2, 4, 6, 8)  # (B, H, S_src, Dh), computed once
        assert layer.self_k.shape == (2, 4, 4, 8)  # (B, H, T, Dh), one per decoded token
