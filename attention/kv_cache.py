"""The key/value cache of autoregressive decoding, and attention that reads and extends it."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .gqa import attend, expand_kv

__all__ = ["KVCache", "LayerCache", "cached_cross_attention", "cached_self_attention"]


@dataclass
class LayerCache:
    """What one decoder layer keeps between decoding steps (``Hkv`` = key/value heads).

    Attributes:
        self_k: keys of the layer's self-attention for every token so far, ``(B, Hkv, S, Dh)``;
            one position longer after each step. None before the first step.
        self_v: the matching values, ``(B, Hkv, S, Dh)``.
        cross_k: keys of cross-attention over the encoder output, ``(B, H, S_src, Dh)``;
            computed at the first step and reused unchanged. None in a decoder-only model.
        cross_v: the matching values, ``(B, H, S_src, Dh)``.

    Introduced in chapter 08 (decoding with a KV cache).
    """

    self_k: torch.Tensor | None = None
    self_v: torch.Tensor | None = None
    cross_k: torch.Tensor | None = None
    cross_v: torch.Tensor | None = None


@dataclass
class KVCache:
    """The keys and values of every decoder layer: ``layers[i]`` belongs to layer ``i``.

    Queries are never cached: each step only needs the query of its new token. The attention
    functions of this module update the cache in place.

    Attributes:
        layers: one ``LayerCache`` per decoder layer.

    Introduced in chapter 08 (decoding with a KV cache).
    """

    layers: list[LayerCache] = field(default_factory=list)

    @classmethod
    def empty(cls, num_layers: int) -> KVCache:
        """Return a cache with ``num_layers`` empty layers, ready for the first step.

        Args:
            num_layers: number of decoder layers.

        Returns:
            A new ``KVCache``.

        Shapes:
            (none)

        Introduced in chapter 08 (decoding with a KV cache).
        """
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
        return cls([LayerCache() for _ in range(num_layers)])

    @property
    def seq_len(self) -> int:
        """The number of tokens cached so far (0 before the first step)."""
        first = self.layers[0].self_k if self.layers else None
        return 0 if first is None else first.shape[2]

    def nbytes(self, *, include_cross: bool = True) -> int:
        """Count the bytes held by the cached tensors.

        Args:
            include_cross: also count the cross-attention keys and values.

        Returns:
            The total size in bytes.

        Shapes:
            (none)

        Introduced in chapter 08 (decoding with a KV cache).
        """
        names = ("self_k", "self_v") + (("cross_k", "cross_v") if include_cross else ())
        tensors = [getattr(layer, n) for layer in self.layers for n in names]
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def _split_heads(x: torch.Tensor, heads: int, head_dim: int) -> torch.Tensor:
    B, T, _ = x.shape  # batch, tokens, heads * head width
    return x.view(B, T, heads, head_dim).transpose(1, 2)  # (B, T, H*Dh) -> (B, H, T, Dh)


def _merge_heads(attn: nn.Module, out: torch.Tensor) -> torch.Tensor:
    B, H, T, Dh = out.shape  # batch, heads, tokens, head width
    return attn.out_proj(out.transpose(1, 2).reshape(B, T, H * Dh))  # (B, H, T, Dh) -> (B, T, D)


def cached_self_attention(
    attn: nn.Module, x: torch.Tensor, cache: LayerCache, need_weights: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run causal self-attention for new tokens, appending their keys and values to the cache.

    Only the new tokens are projected; the keys and values of earlier tokens are read from
    ``cache``. New token ``i`` sits at position ``P + i`` (``P`` = tokens already cached) and
    attends to positions ``0 .. P + i``: the same result as causal attention over the whole
    sequence, for a fraction of the work.

    Args:
        attn: a ``MultiHeadAttention`` or ``GroupedQueryAttention``.
        x: the new tokens (one per step, or the whole prompt at the first step).
        cache: this layer's cache; ``self_k`` and ``self_v`` are replaced by longer tensors.
        need_weights: whether to return the attention weights.

    Returns:
        ``(out, weights)``; weights ``None`` unless ``need_weights``.

    Shapes:
        x ``(B, t, D)`` -> out ``(B, t, D)``, weights ``(B, H, t, P + t)``; the cache grows
        from ``(B, Hkv, P, Dh)`` to ``(B, Hkv, P + t, Dh)``.

    Introduced in chapter 08 (decoding with a KV cache).
    """
    H, Dh = attn.num_heads, attn.head_dim  # heads, head width
    Hkv = getattr(attn, "num_kv_heads", H)  # key/value heads (H for plain multi-head)
    q = _split_heads(attn.q_proj(x), H, Dh)  # (B, t, D) -> (B, H, t, Dh)
    k = _split_heads(attn.k_proj(x), Hkv, Dh)  # (B, t, Hkv*Dh) -> (B, Hkv, t, Dh)
    v = _split_heads(attn.v_proj(x), Hkv, Dh)  # (B, t, Hkv*Dh) -> (B, Hkv, t, Dh)
    if cache.self_k is not None:
        k = torch.cat([cache.self_k, k], dim=2)  # (B, Hkv, P, Dh) + (B, Hkv, t, Dh) -> P + t
        v = torch.cat([cache.self_v, v], dim=2)  # (B, Hkv, P, Dh) + (B, Hkv, t, Dh) -> P + t
    cache.self_k, cache.self_v = k, v
    t, S = x.shape[1], k.shape[2]  # new tokens, all tokens
    mask = torch.ones(t, S, dtype=torch.bool, device=x.device).tril(S - t)  # (t, S)
    dropout_p = attn.dropout if attn.training else 0.0
    out, weights = attend(q, expand_kv(k, H), expand_kv(v, H), mask, dropout_p, need_weights)
    return _merge_heads(attn, out), weights  # (B, t, D)


def cached_cross_attention(
    attn: nn.Module,
    x: torch.Tensor,
    memory: torch.Tensor,
    cache: LayerCache,
    mask: torch.Tensor | None = None,
    need_weights: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attend from new decoder tokens to the encoder output, projecting it only once.

    The encoder output does not change while decoding, so its keys and values are computed
    at the first step, stored in ``cache.cross_k`` / ``cache.cross_v`` and reused afterwards.

    Args:
        attn: the layer's cross-attention ``MultiHeadAttention``.
        x: the new decoder tokens.
        memory: the encoder output.
        cache: this layer's cache.
        mask: optional bool mask over the source tokens, True = may attend, e.g. ``(B, 1, 1, S)``.
        need_weights: whether to return the attention weights.

    Returns:
        ``(out, weights)``; weights ``None`` unless ``need_weights``.

    Shapes:
        x ``(B, t, D)``, memory ``(B, S, D)`` -> out ``(B, t, D)``, weights ``(B, H, t, S)``.

    Introduced in chapter 08 (decoding with a KV cache).
    """
    H, Dh = attn.num_heads, attn.head_dim  # heads, head width
    if cache.cross_k is None:
        cache.cross_k = _split_heads(attn.k_proj(memory), H, Dh)  # (B, S, D) -> (B, H, S, Dh)
        cache.cross_v = _split_heads(attn.v_proj(memory), H, Dh)  # (B, S, D) -> (B, H, S, Dh)
    q = _split_heads(attn.q_proj(x), H, Dh)  # (B, t, D) -> (B, H, t, Dh)
    dropout_p = attn.dropout if attn.training else 0.0
    out, weights = attend(q, cache.cross_k, cache.cross_v, mask, dropout_p, need_weights)
    return _merge_heads(attn, out), weights  # (B, t, D)
