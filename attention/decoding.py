"""Greedy decoding, with and without a KV cache, and the size of that cache."""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_int, check_token_ids
from .kv_cache import KVCache
from .models import DecoderOnlyLM, Transformer

__all__ = ["greedy_decode", "greedy_decode_seq2seq", "kv_cache_bytes"]


class _EvalMode:
    """Put a model in eval mode (no dropout) for a with-block, then restore its mode."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.was_training = model, model.training

    def __enter__(self) -> None:
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)


def _step(tokens: torch.Tensor, logits: torch.Tensor, done: torch.Tensor, eos_id, pad_id):
    """Append the argmax of the last logits; finished rows get ``pad_id`` instead."""
    next_id = logits[:, -1].argmax(dim=-1)  # (B, T, V) -> (B,)
    if eos_id is not None:
        next_id = next_id.masked_fill(done, pad_id)
        done |= next_id == eos_id
    return torch.cat([tokens, next_id[:, None]], dim=1), next_id[:, None]  # (B, T + 1), (B, 1)


@torch.no_grad()
def greedy_decode(
    model: DecoderOnlyLM,
    prompt: torch.Tensor,
    max_new_tokens: int,
    *,
    use_cache: bool = True,
    eos_id: int | None = None,
    pad_id: int | None = None,
) -> torch.Tensor:
    """Extend a prompt by always picking the most likely next token.

    Without a cache, every step runs the model over the whole sequence again (``O(T)`` work
    per token in each layer's projections); with one, the prompt is run once and each step
    feeds only the newest token, reading earlier keys and values from the cache. Both give
    the same tokens. Dropout is off during decoding; the model's mode is restored after.

    Args:
        model: a ``DecoderOnlyLM``.
        prompt: the prompt ids, all real tokens (no padding).
        max_new_tokens: how many tokens to add at most.
        use_cache: whether to decode with a ``KVCache``.
        eos_id: if given, a row stops at its first ``eos_id``; decoding stops when all have.
        pad_id: what finished rows get after their EOS; defaults to ``eos_id``.

    Returns:
        The prompt followed by the generated ids.

    Shapes:
        prompt ``(B, T0)`` -> ``(B, T0 + n)`` with ``n <= max_new_tokens``.

    Introduced in chapter 08 (decoding with a KV cache).
    """
    if not isinstance(model, DecoderOnlyLM):
        raise ValueError(f"model must be a DecoderOnlyLM, got {type(model).__name__}")
    check_token_ids("prompt", prompt, model.embed.tokens.num_embeddings, long_only=True)
    check_int("max_new_tokens", max_new_tokens)
    if prompt.shape[1] + max_new_tokens > model.max_len:
        raise ValueError(
            f"prompt length {prompt.shape[1]} + max_new_tokens={max_new_tokens} exceeds the "
            f"model's max_len={model.max_len}"
        )
    pad_id = eos_id if pad_id is None else pad_id
    tokens, done = prompt, torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    cache = KVCache.empty(len(model.decoder.layers)) if use_cache else None
    with _EvalMode(model):
        # The prompt was checked above; the steps feed argmax ids, valid by construction.
        logits = model._logits(prompt, cache)  # (B, T0, V); fills the cache with the prompt
        for i in range(max_new_tokens):
            tokens, new = _step(tokens, logits, done, eos_id, pad_id)  # (B, T + 1)
            if (eos_id is not None and done.all()) or i == max_new_tokens - 1:
                break
            logits = model._logits(new, cache) if use_cache else model._logits(tokens, None)
    return tokens


@torch.no_grad()
def greedy_decode_seq2seq(
    model: Transformer,
    src: torch.Tensor,
    max_len: int,
    *,
    bos_id: int,
    eos_id: int,
    pad_id: int | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Translate ``src`` token by token, always picking the most likely next token.

    The source is encoded once. The decoder starts from ``BOS`` and, at each step, predicts
    the next token from all previous ones: teacher forcing is for training only. With a cache
    each step feeds only the newest token and the cross-attention keys/values of the source
    are computed once; the tokens are the same as without it.

    Args:
        model: a ``Transformer``.
        src: the source ids, right-padded with ``model.pad_id``.
        max_len: the most target tokens to generate (EOS included).
        bos_id: the id that starts every target.
        eos_id: the id that ends a target; decoding stops once every row has produced it.
        pad_id: what finished rows get after their EOS; defaults to ``model.pad_id``.
        use_cache: whether to decode with a ``KVCache``.

    Returns:
        The generated ids without BOS, ``pad_id`` after each row's EOS.

    Shapes:
        src ``(B, S)`` -> ``(B, n)`` with ``n <= max_len``.

    Introduced in chapter 06 (greedy decoding); the cache in chapter 08.
    """
    if not isinstance(model, Transformer):
        raise ValueError(f"model must be a Transformer, got {type(model).__name__}")
    check_token_ids("src", src, model.src_embed.tokens.num_embeddings, long_only=True)
    check_int("max_len", max_len)
    if max_len > model.max_len:
        raise ValueError(f"max_len={max_len} exceeds the model's max_len={model.max_len}")
    V = model.tgt_embed.tokens.num_embeddings  # target vocabulary
    if isinstance(bos_id, bool) or not isinstance(bos_id, int) or not 0 <= bos_id < V:
        raise ValueError(f"bos_id must be a target token id in [0, {V}), got {bos_id!r}")
    pad_id = model.pad_id if pad_id is None else pad_id
    if pad_id is None:
        raise ValueError("pad_id is None and the model has no pad_id: pass pad_id=")
    B = src.shape[0]  # batch
    tokens = torch.full((B, 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    cache = KVCache.empty(len(model.decoder.layers)) if use_cache else None
    with _EvalMode(model):
        memory = model._encode(src)  # (B, S) -> (B, S, D), once
        new = tokens
        for _ in range(max_len):
            logits = model._decode(new if use_cache else tokens, memory, src, cache)  # (B, ., V)
            tokens, new = _step(tokens, logits, done, eos_id, pad_id)  # (B, T + 1)
            if done.all():
                break
    return tokens[:, 1:]  # drop BOS: (B, 1 + n) -> (B, n)


def kv_cache_bytes(
    num_layers: int,
    num_kv_heads: int,
    head_dim: int,
    seq_len: int,
    batch_size: int = 1,
    dtype: torch.dtype = torch.float16,
) -> int:
    """Count the bytes a decoder's KV cache needs: ``2 · L · Hkv · Dh · T · B · bytes``.

    The 2 is one key and one value per token, per layer and per key/value head. With
    multi-head attention ``Hkv = H``; grouped-query attention divides the cache by
    ``H / Hkv``; multi-query attention (``Hkv = 1``) by ``H``.

    Args:
        num_layers: decoder layers ``L``.
        num_kv_heads: key/value heads ``Hkv``.
        head_dim: head width ``Dh``.
        seq_len: cached tokens ``T`` per sequence.
        batch_size: sequences decoded together ``B``.
        dtype: dtype of the cached tensors.

    Returns:
        The size in bytes.

    Introduced in chapter 08 (decoding with a KV cache).
    """
    sizes = (num_layers, num_kv_heads, head_dim, seq_len, batch_size)
    names = ("num_layers", "num_kv_heads", "head_dim", "seq_len", "batch_size")
    for name, value in zip(names, sizes, strict=True):
        check_int(name, value)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"dtype must be a torch.dtype, got {dtype!r}")
    bytes_per_value = torch.empty((), dtype=dtype).element_size()
    return 2 * num_layers * num_kv_heads * head_dim * seq_len * batch_size * bytes_per_value
