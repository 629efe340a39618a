"""The decoder side of the Transformer: decoder layer and decoder stack."""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_attention_inputs
from .kv_cache import KVCache, LayerCache
from .layers import Weights, _Layer, _Stack

__all__ = ["Decoder", "DecoderLayer"]


class DecoderLayer(_Layer):
    """Masked self-attention, cross-attention to the encoder, then a feed-forward block.

    Each sublayer has a residual connection and a LayerNorm (post-LN by default, pre-LN with
    ``norm_first=True``). With ``cross_attention=False`` it is the block of a decoder-only
    language model. ``num_kv_heads`` gives the self-attention grouped key/value heads.
    ``DecoderLayer.from_torch(m)`` copies a ``torch.nn.TransformerDecoderLayer``.
    ``forward(...)`` returns ``forward_with_weights(...)``'s output alone.

    Args:
        d_model, num_heads, d_ff, dropout, num_kv_heads, norm_first, activation,
            layer_norm_eps, bias, device, dtype: as for ``EncoderLayer``.
        cross_attention: include the cross-attention sublayer.

    Shapes:
        x ``(B, T, D)``, memory ``(B, S, D)`` -> ``(B, T, D)``.

    Introduced in chapter 06 (the encoder–decoder Transformer).
    """

    _order = ("self_attn", "self_attn_norm", "cross_attn", "cross_attn_norm", "ffn", "ffn_norm")
    _torch_class = nn.TransformerDecoderLayer
    _torch_names = {
        "self_attn": "self_attn", "cross_attn": "multihead_attn",
        "self_attn_norm": "norm1", "cross_attn_norm": "norm2", "ffn_norm": "norm3",
    }  # fmt: skip

    def __init__(self, *args, cross_attention: bool = True, **kwargs) -> None:
        super().__init__(*args, cross_attention=cross_attention, **kwargs)

    def forward_with_weights(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        self_mask: torch.Tensor | None = None,
        cross_mask: torch.Tensor | None = None,
        cache: LayerCache | None = None,
        need_weights: bool = True,
    ) -> tuple[torch.Tensor, Weights, Weights]:
        """Decode ``x`` and return the self- and cross-attention weights as well.

        Args:
            x: the target token vectors (all of them, or only the new ones with a cache).
            memory: the encoder output; required exactly when the layer has cross-attention.
            self_mask: bool mask of the self-attention, True = may attend; usually causal
                ``(T, T)``. Must be None with a cache, which applies the causal mask itself.
            cross_mask: bool mask over the source tokens, e.g. padding ``(B, 1, 1, S)``.
            cache: this layer's ``LayerCache`` for step-by-step decoding (chapter 08).
            need_weights: False skips the weights and returns None for them.

        Returns:
            ``(out, self_weights, cross_weights)``; ``cross_weights`` None without cross-attention.

        Shapes:
            x ``(B, T, D)``, memory ``(B, S, D)`` -> out ``(B, T, D)``, self weights
            ``(B, H, T, T)`` (``(B, H, T, P + T)`` with ``P`` cached tokens), cross weights
            ``(B, H, T, S)``.

        Introduced in chapter 06 (the encoder–decoder Transformer).
        """
        self._check(x, memory, self_mask, cross_mask, cache)
        return self._forward(x, memory, self_mask, cross_mask, cache, need_weights)

    def _check(self, x, memory, self_mask, cross_mask, cache) -> None:
        if memory is None and self.cross_attn is not None:
            raise ValueError("this layer has cross-attention: pass memory (the encoder output)")
        if memory is not None and self.cross_attn is None:
            raise ValueError(
                "this layer has no cross-attention (decoder-only): memory must be None"
            )
        if cache is not None and self_mask is not None:
            raise ValueError("pass self_mask=None with a cache: the cache applies the causal mask")
        D, H = self.self_attn.d_model, self.self_attn.num_heads  # width, heads
        check_attention_inputs(x, x, x, None if cache is not None else self_mask, D, H)
        if memory is not None:
            check_attention_inputs(x, memory, memory, cross_mask, D, H)

    def _forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None,
        self_mask: torch.Tensor | None,
        cross_mask: torch.Tensor | None,
        cache: LayerCache | None,
        need_weights: bool,
    ) -> tuple[torch.Tensor, Weights, Weights]:
        def attend_self(h: torch.Tensor) -> tuple[torch.Tensor, Weights]:
            return self.self_attn._forward(h, h, h, self_mask, need_weights, cache)

        def attend_cross(h: torch.Tensor) -> tuple[torch.Tensor, Weights]:
            # with a cache, the encoder output is projected to keys and values once, then reused
            return self.cross_attn._forward(
                h, memory, memory, cross_mask, need_weights, cache, True
            )

        x, self_w = self._sublayer(x, self.self_attn_norm, attend_self)
        cross_w = None
        if self.cross_attn is not None:
            x, cross_w = self._sublayer(x, self.cross_attn_norm, attend_cross)
        return self._feed_forward(x), self_w, cross_w  # (B, T, D), (B, H, T, T), (B, H, T, S)


class Decoder(_Stack):
    """A stack of ``num_layers`` decoder layers, optionally without cross-attention.

    Pre-LN stacks (``norm_first=True``) end with a final LayerNorm, as is usual for them.
    ``forward(...)`` returns ``forward_with_weights(...)``'s output alone.

    Args:
        num_layers: number of layers ``N`` (the paper: 6).
        *layer_args: passed to every ``DecoderLayer`` (``d_model, num_heads, d_ff, dropout``).
        **layer_kwargs: passed to every ``DecoderLayer`` (``cross_attention``,
            ``num_kv_heads``, ``norm_first``, ...).

    Shapes:
        x ``(B, T, D)``, memory ``(B, S, D)`` -> ``(B, T, D)``.

    Introduced in chapter 06 (the encoder–decoder Transformer).
    """

    def __init__(self, num_layers: int, *layer_args, **layer_kwargs) -> None:
        super().__init__(DecoderLayer, num_layers, *layer_args, **layer_kwargs)

    def forward_with_weights(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        self_mask: torch.Tensor | None = None,
        cross_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        need_weights: bool = True,
    ) -> tuple[torch.Tensor, Weights, Weights]:
        """Decode ``x`` and return every layer's self- and cross-attention weights, stacked.

        Args:
            x: the embedded target tokens (only the new ones when ``cache`` is given).
            memory: the encoder output (None without cross-attention).
            self_mask: bool self-attention mask, usually causal ``(T, T)``; None with a cache.
            cross_mask: bool mask over the source tokens, e.g. padding ``(B, 1, 1, S)``.
            cache: a ``KVCache`` with one ``LayerCache`` per layer, updated in place.
            need_weights: False skips the weights and returns None for them.

        Returns:
            ``(out, self_weights, cross_weights)``.

        Shapes:
            x ``(B, T, D)``, memory ``(B, S, D)`` -> out ``(B, T, D)``, self weights
            ``(N, B, H, T, T)``, cross weights ``(N, B, H, T, S)`` or None.

        Introduced in chapter 06 (the encoder–decoder Transformer).
        """
        self._check_cache(cache)
        layer_cache = None if cache is None else cache.layers[0]
        self.layers[0]._check(x, memory, self_mask, cross_mask, layer_cache)  # once for all
        return self._forward(x, memory, self_mask, cross_mask, cache, need_weights)

    def _check_cache(self, cache: KVCache | None) -> None:
        if cache is None:
            return
        if not isinstance(cache, KVCache):
            raise ValueError(f"cache must be a KVCache, got {type(cache).__name__}")
        if len(cache.layers) != len(self.layers):
            raise ValueError(
                f"the cache has {len(cache.layers)} layers but the decoder has {len(self.layers)}"
            )

    def _forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None,
        self_mask: torch.Tensor | None,
        cross_mask: torch.Tensor | None,
        cache: KVCache | None,
        need_weights: bool,
    ) -> tuple[torch.Tensor, Weights, Weights]:
        self_ws, cross_ws = [], []
        for i, layer in enumerate(self.layers):
            layer_cache = None if cache is None else cache.layers[i]
            x, self_w, cross_w = layer._forward(
                x, memory, self_mask, cross_mask, layer_cache, need_weights
            )  # (B, T, D)
            self_ws.append(self_w)
            cross_ws.append(cross_w)
        x = self._final_norm(x)
        if not need_weights:
            return x, None, None
        cross = None if self.layers[0].cross_attn is None else torch.stack(cross_ws)
        return x, torch.stack(self_ws), cross  # (B, T, D), (N, B, H, T, T), (N, B, H, T, S)
