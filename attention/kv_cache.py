"""The key/value cache of autoregressive decoding: what each decoder layer keeps between steps.

``MultiHeadAttention.forward(..., cache=layer_cache)`` reads and extends it (chapter 08).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ._validate import check_int

__all__ = ["KVCache", "LayerCache"]


@dataclass
class LayerCache:
    """What one decoder layer keeps between decoding steps (``Hkv`` = key/value heads).

    Attributes:
        self_k: keys of the layer's self-attention for every token so far, ``(B, Hkv, S, Dh)``;
            one position longer after each step. None before the first step.
        self_v: the matching values, ``(B, Hkv, S, Dh)``.
        cross_k: keys of cross-attention over the encoder output, ``(B, Hkv, S_src, Dh)``;
            computed at the first step and reused unchanged. None in a decoder-only model.
        cross_v: the matching values, ``(B, Hkv, S_src, Dh)``.

    Introduced in chapter 08 (decoding with a KV cache).
    """

    self_k: torch.Tensor | None = None
    self_v: torch.Tensor | None = None
    cross_k: torch.Tensor | None = None
    cross_v: torch.Tensor | None = None


@dataclass
class KVCache:
    """The keys and values of every decoder layer: ``layers[i]`` belongs to layer ``i``.

    Queries are never cached: each step only needs the query of its new token. The decoder
    passes ``layers[i]`` to the attention of layer ``i``, which updates it in place.

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

        Introduced in chapter 08 (decoding with a KV cache).
        """
        check_int("num_layers", num_layers)
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

        Introduced in chapter 08 (decoding with a KV cache).
        """
        names = ("self_k", "self_v") + (("cross_k", "cross_v") if include_cross else ())
        tensors = [getattr(layer, n) for layer in self.layers for n in names]
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)
