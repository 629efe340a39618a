"""attention.decoding: greedy decoding with and without a KV cache, and its size (06, 08)."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from attention import (
    DecoderOnlyLM,
    KVCache,
    Transformer,
    greedy_decode,
    greedy_decode_seq2seq,
    kv_cache_bytes,
)

F64 = torch.float64


def _lm(seed: int, num_kv_heads: int | None = None, norm_first: bool = False, dtype=F64):
    torch.manual_seed(seed)
    return DecoderOnlyLM(
        23, d_model=32, num_heads=4, num_layers=2, num_kv_heads=num_kv_heads,
        norm_first=norm_first, dtype=dtype,
    )  # fmt: skip


@pytest.mark.parametrize("num_kv_heads", [None, 2, 1])  # MHA, GQA, MQA
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_lm_greedy_decoding_with_cache_gives_the_same_tokens(num_kv_heads, norm_first, dtype):
    lm = _lm(0, num_kv_heads, norm_first, dtype)
    prompt = torch.randint(0, 23, (3, 4))
    cached = greedy_decode(lm, prompt, 12, use_cache=True)
    uncached = greedy_decode(lm, prompt, 12, use_cache=False)
    assert torch.equal(cached, uncached)
    assert cached.shape == (3, 16)
    assert torch.equal(cached[:, :4], prompt)


def test_cached_logits_equal_full_sequence_logits() -> None:
    lm = _lm(1, num_kv_heads=2).eval()
    ids = torch.randint(0, 23, (2, 9))
    cache = KVCache.empty(2)
    steps = [lm(ids[:, :3], cache=cache)]  # the prompt in one go, then one token at a time
    steps += [lm(ids[:, t : t + 1], cache=cache) for t in range(3, 9)]
    assert_close(torch.cat(steps, dim=1), lm(ids), rtol=0, atol=1e-12)
    assert cache.seq_len == 9


@pytest.mark.parametrize("norm_first", [False, True])
def test_seq2seq_greedy_decoding_with_cache_gives_the_same_tokens(norm_first: bool) -> None:
    torch.manual_seed(3)
    model = Transformer(15, 17, d_model=32, num_heads=4, norm_first=norm_first, dtype=F64)
    src = torch.randint(3, 15, (4, 7))
    src[1, 3:] = 0  # padding (pad_id 0)
    kwargs = dict(bos_id=1, eos_id=2, max_len=12)
    cached = greedy_decode_seq2seq(model, src, use_cache=True, **kwargs)
    uncached = greedy_decode_seq2seq(model, src, use_cache=False, **kwargs)
    assert torch.equal(cached, uncached)
    assert cached.shape[0] == 4 and 1 <= cached.shape[1] <= 12


class _Scripted(torch.nn.Module):
    """Replace a model's output layer so that it emits a fixed sequence of tokens."""

    def __init__(self, script: list[list[int]], vocab_size: int) -> None:
        super().__init__()
        self.script, self.V = torch.tensor(script), vocab_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape  # batch, tokens, width
        logits = torch.zeros(B, T, self.V, dtype=x.dtype)
        step = min(self._step, self.script.shape[1] - 1)
        logits[torch.arange(B), -1, self.script[:, step]] = 1.0
        self._step += 1
        return logits


def test_decoding_stops_at_eos_and_pads_finished_rows() -> None:
    torch.manual_seed(5)
    model = Transformer(9, 9, d_model=16, num_heads=2, tie_embeddings=False)
    model.lm_head = _Scripted([[5, 2, 6, 6], [5, 6, 7, 2]], 9)
    for use_cache in (True, False):
        model.lm_head._step = 0
        out = greedy_decode_seq2seq(
            model, torch.randint(3, 9, (2, 4)), 10, bos_id=1, eos_id=2, use_cache=use_cache
        )
        assert out.tolist() == [[5, 2, 0, 0], [5, 6, 7, 2]]  # stops once every row has EOS


def test_decoding_restores_the_training_mode_and_ignores_dropout() -> None:
    torch.manual_seed(6)
    lm = DecoderOnlyLM(23, d_model=32, num_heads=4, dropout=0.5).train()
    prompt = torch.randint(0, 23, (2, 3))
    first = greedy_decode(lm, prompt, 8)
    assert lm.training
    assert torch.equal(first, greedy_decode(lm, prompt, 8, use_cache=False))


def test_lm_eos_handling() -> None:
    lm = _lm(7)
    prompt = torch.randint(0, 23, (4, 2))
    free = greedy_decode(lm, prompt, 10)
    eos = int(free[0, 4])  # a token that row 0 produces at step 3
    out = greedy_decode(lm, prompt, 10, eos_id=eos, pad_id=0)
    for row, ref in zip(out, free, strict=True):
        hits = (ref[2:] == eos).nonzero()
        if len(hits):
            stop = 2 + int(hits[0])
            assert torch.equal(row[: stop + 1], ref[: stop + 1])
            assert (row[stop + 1 :] == 0).all()


def test_kv_cache_bytes_of_published_configurations() -> None:
    # Llama-2-7B: 32 layers, 32 heads of 128 (MHA); fp16; 4096 tokens -> 2 GiB per sequence
    assert kv_cache_bytes(32, 32, 128, 4096) == 2 * 1024**3
    # Llama-2-70B: 80 layers, 8 key/value heads of 128 (GQA, 64 query heads) -> 1.25 GiB
    assert kv_cache_bytes(80, 8, 128, 4096) == 1.25 * 1024**3
    # MQA divides the MHA cache by the number of heads
    assert kv_cache_bytes(32, 1, 128, 4096) * 32 == kv_cache_bytes(32, 32, 128, 4096)
    assert kv_cache_bytes(2, 4, 16, 10, 3, torch.float32) == 2 * 2 * 4 * 16 * 10 * 3 * 4


def test_decoding_errors_name_the_values() -> None:
    lm = DecoderOnlyLM(10, d_model=8, num_heads=2, max_len=8)
    with pytest.raises(ValueError, match="prompt length 5 \\+ max_new_tokens=4 exceeds .*=8"):
        greedy_decode(lm, torch.ones(1, 5, dtype=torch.long), 4)
    with pytest.raises(ValueError, match="max_new_tokens must be a positive int, got 0"):
        greedy_decode(lm, torch.ones(1, 5, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="prompt must be a torch.long tensor"):
        greedy_decode(lm, torch.ones(5, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="model must be a DecoderOnlyLM, got Transformer"):
        greedy_decode(Transformer(5, 5, 8, 2), torch.ones(1, 2, dtype=torch.long), 2)
    model = Transformer(5, 5, 8, 2, max_len=6)
    with pytest.raises(ValueError, match="max_len=7 exceeds the model's max_len=6"):
        greedy_decode_seq2seq(model, torch.ones(1, 2, dtype=torch.long), 7, bos_id=1, eos_id=2)
    with pytest.raises(ValueError, match="model must be a Transformer, got DecoderOnlyLM"):
        greedy_decode_seq2seq(lm, torch.ones(1, 2, dtype=torch.long), 3, bos_id=1, eos_id=2)
    with pytest.raises(ValueError, match="seq_len must be a positive int, got 0"):
        kv_cache_bytes(1, 1, 1, 0)
    with pytest.raises(ValueError, match="dtype must be a torch.dtype, got 'fp16'"):
        kv_cache_bytes(1, 1, 1, 1, dtype="fp16")
    with pytest.raises(ValueError, match="num_layers must be a positive int, got 0"):
        KVCache.empty(0)
    with pytest.raises(ValueError, match="the cache has 3 layers but the decoder has 1"):
        DecoderOnlyLM(10, 8, 2, num_layers=1)(torch.ones(1, 2, dtype=torch.long), KVCache.empty(3))
