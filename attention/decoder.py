"""The decoder side of the Transformer: decoder layer and decoder stack."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from .gqa import GroupedQueryAttention
from .kv_cache import KVCache, LayerCache, cached_cross_attention, cached_self_attention
from .layers import FeedForward, Weights, _check_torch_layer, _copy_common, _sublayer
from .multihead import MultiHeadAttention

__all__ = ["Decoder", "DecoderLayer"]


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention to the encoder, then a feed-forward block.

    Each sublayer has a residual connection and a LayerNorm (post-LN by default, pre-LN with
    ``norm_first=True``). With ``cross_attention=False`` it is the block of a decoder-only
    language model. ``num_kv_heads`` gives the self-attention grouped key/value heads.

    Args:
        d_model: model width ``D``.
        num_heads: attention heads ``H``.
        d_ff: feed-forward hidden width.
        dropout: dropout on attention weights, hidden activations and each sublayer's output.
        cross_attention: include the cross-attention sublayer (keyword only).
        num_kv_heads: key/value heads of the self-attention (GQA); None = ``num_heads``.
        norm_first: pre-LN instead of post-LN (keyword only).
        activation: ``"relu"`` or ``"gelu"`` (keyword only).
        layer_norm_eps: the LayerNorms' epsilon (keyword only).
        device: where to create the parameters (keyword only).
        dtype: dtype of the parameters (keyword only).

    Shapes:
        x ``(B, T, D)``, memory ``(B, S, D)`` -> ``(B, T, D)``.

    Introduced in chapter 06 (the encoder–decoder Transformer).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        *,
        cross_attention: bool = True,
        num_kv_heads: int | None = None,
        norm_first: bool = False,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.norm_first = norm_first
        if num_kv_heads is None:
            self.self_attn = MultiHeadAttention(d_model, num_heads, dropout, **factory)
        else:
            self.self_attn = GroupedQueryAttention(
                d_model, num_heads, num_kv_heads, dropout, **factory
            )
        self.self_attn_norm = nn.LayerNorm(d_model, eps=layer_norm_eps, **factory)
        self.cross_attn = self.cross_attn_norm = None
        if cross_attention:
            self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout, **factory)
            self.cross_attn_norm = nn.LayerNorm(d_model, eps=layer_norm_eps, **factory)
        self.ffn = FeedForward(d_model, d_ff, dropout, activation, **factory)
        self.ffn_norm = nn.LayerNorm(d_model, eps=layer_norm_eps, **factory)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        self_mask: torch.Tensor | None = None,
        cross_mask: torch.Tensor | None = None,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        """Decode ``x`` (``(B, T, D) -> (B, T, D)``); see ``forward_with_weights``. Chapter 06."""
        return self.forward_with_weights(x, memory, self_mask, cross_mask, cache, False)[0]

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
        if memory is None and self.cross_attn is not None:
            raise ValueError("this layer has cross-attention: pass memory (the encoder output)")
        if memory is not None and self.cross_attn is None:
            raise ValueError(
                "this layer has no cross-attention (decoder-only): memory must be None"
            )
        if cache is not None and self_mask is not None:
            raise ValueError("pass self_mask=None with a cache: the cache applies the causal mask")
        post = (self.dropout, self.norm_first)  # how each sublayer joins the residual stream
        if cache is None:
            attend_self = partial(self.self_attn, mask=self_mask, need_weights=need_weights)
        else:
            attend_self = partial(cached_self_attention, self.self_attn, cache=cache)
            attend_self = partial(attend_self, need_weights=need_weights)
        x, self_w = _sublayer(x, self.self_attn_norm, *post, attend_self)
        cross_w = None
        if self.cross_attn is not None:
            if cache is None:
                attend_cross = partial(self.cross_attn, key=memory, mask=cross_mask)
            else:  # the encoder output is projected to keys and values once, then reused
                attend_cross = partial(cached_cross_attention, self.cross_attn, memory=memory)
                attend_cross = partial(attend_cross, cache=cache, mask=cross_mask)
            attend_cross = partial(attend_cross, need_weights=need_weights)
            x, cross_w = _sublayer(x, self.cross_attn_norm, *post, attend_cross)
        x, _ = _sublayer(x, self.ffn_norm, *post, lambda h: (self.ffn(h), None))
        return x, self_w, cross_w  # (B, T, D), (B, H, T, T), (B, H, T, S)

    @classmethod
    def from_torch(cls, m: nn.TransformerDecoderLayer) -> DecoderLayer:
        """Build a DecoderLayer with the weights of a ``torch.nn.TransformerDecoderLayer``.

        Args:
            m: a layer with ``batch_first=True``, relu or gelu, biases (post- or pre-LN).

        Returns:
            A new layer on ``m``'s device and dtype, in ``m``'s mode, equal to ``m`` when
            given the inverted masks (torch's True = ignore).

        Shapes:
            (weights only)

        Introduced in chapter 06 (the encoder–decoder Transformer).
        """
        act = _check_torch_layer(m, nn.TransformerDecoderLayer)
        w = m.linear1.weight
        new = cls(
            m.self_attn.embed_dim, m.self_attn.num_heads, m.linear1.out_features, m.dropout.p,
            norm_first=m.norm_first, activation=act, layer_norm_eps=m.norm1.eps,
            device=w.device, dtype=w.dtype,
        )  # fmt: skip
        new.self_attn = MultiHeadAttention.from_torch(m.self_attn)
        new.cross_attn = MultiHeadAttention.from_torch(m.multihead_attn)
        norms = {"self_attn_norm": "norm1", "cross_attn_norm": "norm2", "ffn_norm": "norm3"}
        return _copy_common(new, m, norms)


class Decoder(nn.Module):
    """A stack of ``num_layers`` decoder layers, optionally without cross-attention.

    Pre-LN stacks (``norm_first=True``) end with a final LayerNorm, as is usual for them.

    Args:
        num_layers: number of layers ``N`` (the paper: 6).
        d_model, num_heads, d_ff, dropout, cross_attention, num_kv_heads, norm_first,
            activation, layer_norm_eps, device, dtype: as for ``DecoderLayer``, for every layer.

    Shapes:
        x ``(B, T, D)``, memory ``(B, S, D)`` -> ``(B, T, D)``.

    Introduced in chapter 06 (the encoder–decoder Transformer).
    """

    def __init__(
        self,
        num_layers: int,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        *,
        cross_attention: bool = True,
        num_kv_heads: int | None = None,
        norm_first: bool = False,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
        options = dict(
            cross_attention=cross_attention, num_kv_heads=num_kv_heads, norm_first=norm_first,
            activation=activation, layer_norm_eps=layer_norm_eps, device=device, dtype=dtype,
        )  # fmt: skip
        self.layers = nn.ModuleList(
            DecoderLayer(d_model, num_heads, d_ff, dropout, **options) for _ in range(num_layers)
        )
        self.norm = None
        if norm_first:
            self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps, device=device, dtype=dtype)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        self_mask: torch.Tensor | None = None,
        cross_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Decode ``x`` (``(B, T, D) -> (B, T, D)``); see ``forward_with_weights``. Chapter 06."""
        return self.forward_with_weights(x, memory, self_mask, cross_mask, cache, False)[0]

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
        if cache is not None and len(cache.layers) != len(self.layers):
            raise ValueError(
                f"the cache has {len(cache.layers)} layers but the decoder has {len(self.layers)}"
            )
        self_ws, cross_ws = [], []
        for i, layer in enumerate(self.layers):
            layer_cache = None if cache is None else cache.layers[i]
            x, self_w, cross_w = layer.forward_with_weights(
                x, memory, self_mask, cross_mask, layer_cache, need_weights
            )  # (B, T, D)
            self_ws.append(self_w)
            cross_ws.append(cross_w)
        if self.norm is not None:
            x = self.norm(x)
        if not need_weights:
            return x, None, None
        cross = None if self.layers[0].cross_attn is None else torch.stack(cross_ws)
        return x, torch.stack(self_ws), cross  # (B, T, D), (N, B, H, T, T), (N, B, H, T, S)
