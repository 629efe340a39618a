"""The encoder side of the Transformer: encoder layer and encoder stack."""

from __future__ import annotations

import torch
from torch import nn

from .layers import FeedForward, Weights, _check_torch_layer, _copy_common, _sublayer
from .multihead import MultiHeadAttention

__all__ = ["Encoder", "EncoderLayer"]


class EncoderLayer(nn.Module):
    """Self-attention then a feed-forward block, each with a residual connection and LayerNorm.

    Post-LN by default, ``LayerNorm(x + Sublayer(x))`` as in [V] §3.1 and PyTorch's default;
    ``norm_first=True`` gives pre-LN ``x + Sublayer(LayerNorm(x))``, easier to train deep.

    Args:
        d_model: model width ``D``.
        num_heads: attention heads ``H``.
        d_ff: feed-forward hidden width.
        dropout: dropout on attention weights, hidden activations and each sublayer's output.
        norm_first: pre-LN instead of post-LN (keyword only).
        activation: ``"relu"`` or ``"gelu"`` (keyword only).
        layer_norm_eps: the LayerNorms' epsilon (keyword only).
        device: where to create the parameters (keyword only).
        dtype: dtype of the parameters (keyword only).

    Shapes:
        x ``(B, S, D)``, mask broadcastable to ``(B, H, S, S)`` -> ``(B, S, D)``.

    Introduced in chapter 06 (the encoder–decoder Transformer).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        *,
        norm_first: bool = False,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout, **factory)
        self.ffn = FeedForward(d_model, d_ff, dropout, activation, **factory)
        self.self_attn_norm = nn.LayerNorm(d_model, eps=layer_norm_eps, **factory)
        self.ffn_norm = nn.LayerNorm(d_model, eps=layer_norm_eps, **factory)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encode ``x`` (``(B, S, D) -> (B, S, D)``); mask: True = may attend. Chapter 06."""
        return self.forward_with_weights(x, mask, need_weights=False)[0]

    def forward_with_weights(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = True
    ) -> tuple[torch.Tensor, Weights]:
        """Encode ``x`` and return the self-attention weights as well.

        Args:
            x: the token vectors.
            mask: optional bool mask, True = may attend; ``(B, 1, 1, S)`` for padding.
            need_weights: False skips the weights (fused attention) and returns None for them.

        Returns:
            ``(out, weights)``.

        Shapes:
            x ``(B, S, D)`` -> out ``(B, S, D)``, weights ``(B, H, S, S)``.

        Introduced in chapter 06 (the encoder–decoder Transformer).
        """
        x, weights = _sublayer(
            x, self.self_attn_norm, self.dropout, self.norm_first,
            lambda h: self.self_attn(h, mask=mask, need_weights=need_weights),
        )  # fmt: skip
        x, _ = _sublayer(
            x, self.ffn_norm, self.dropout, self.norm_first, lambda h: (self.ffn(h), None)
        )
        return x, weights  # (B, S, D), (B, H, S, S) or None

    @classmethod
    def from_torch(cls, m: nn.TransformerEncoderLayer) -> EncoderLayer:
        """Build an EncoderLayer with the weights of a ``torch.nn.TransformerEncoderLayer``.

        Args:
            m: a layer with ``batch_first=True``, relu or gelu, biases (post- or pre-LN).

        Returns:
            A new layer on ``m``'s device and dtype, in ``m``'s mode, equal to ``m`` when
            given the inverted masks (torch's True = ignore).

        Shapes:
            (weights only)

        Introduced in chapter 06 (the encoder–decoder Transformer).
        """
        act = _check_torch_layer(m, nn.TransformerEncoderLayer)
        w = m.linear1.weight
        new = cls(
            m.self_attn.embed_dim, m.self_attn.num_heads, m.linear1.out_features, m.dropout.p,
            norm_first=m.norm_first, activation=act, layer_norm_eps=m.norm1.eps,
            device=w.device, dtype=w.dtype,
        )  # fmt: skip
        new.self_attn = MultiHeadAttention.from_torch(m.self_attn)
        return _copy_common(new, m, {"self_attn_norm": "norm1", "ffn_norm": "norm2"})


class Encoder(nn.Module):
    """A stack of ``num_layers`` encoder layers: one output vector per input token ([V] §3.1).

    The output is ``z = (z_1, ..., z_S)``, as long as the input, not one fixed-length vector.
    Pre-LN stacks (``norm_first=True``) end with a final LayerNorm, as is usual for them.

    Args:
        num_layers: number of layers ``N`` (the paper: 6).
        d_model, num_heads, d_ff, dropout, norm_first, activation, layer_norm_eps, device,
            dtype: as for ``EncoderLayer``, shared by every layer.

    Shapes:
        x ``(B, S, D)``, mask broadcastable to ``(B, H, S, S)`` -> ``(B, S, D)``.

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
        norm_first: bool = False,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
        options = dict(norm_first=norm_first, activation=activation, device=device, dtype=dtype)
        self.layers = nn.ModuleList(
            EncoderLayer(
                d_model, num_heads, d_ff, dropout, layer_norm_eps=layer_norm_eps, **options
            )
            for _ in range(num_layers)
        )
        self.norm = None
        if norm_first:
            self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encode ``x`` (``(B, S, D) -> (B, S, D)``); mask: True = may attend. Chapter 06."""
        return self.forward_with_weights(x, mask, need_weights=False)[0]

    def forward_with_weights(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = True
    ) -> tuple[torch.Tensor, Weights]:
        """Encode ``x`` and return every layer's self-attention weights, stacked.

        Args:
            x: the embedded source tokens.
            mask: optional bool mask, True = may attend; ``(B, 1, 1, S)`` for padding.
            need_weights: False skips the weights and returns None for them.

        Returns:
            ``(memory, weights)``.

        Shapes:
            x ``(B, S, D)`` -> memory ``(B, S, D)``, weights ``(N, B, H, S, S)``.

        Introduced in chapter 06 (the encoder–decoder Transformer).
        """
        all_weights = []
        for layer in self.layers:
            x, weights = layer.forward_with_weights(x, mask, need_weights)  # (B, S, D)
            all_weights.append(weights)
        if self.norm is not None:
            x = self.norm(x)
        stacked = torch.stack(all_weights) if need_weights else None  # N x (B, H, S, S)
        return x, stacked  # (B, S, D), (N, B, H, S, S) or None
