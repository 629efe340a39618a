"""The encoder side of the Transformer: encoder layer and encoder stack."""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_attention_inputs
from .layers import Weights, _Layer, _Stack

__all__ = ["Encoder", "EncoderLayer"]


class EncoderLayer(_Layer):
    """Self-attention then a feed-forward block, each with a residual connection and LayerNorm.

    Post-LN by default, ``LayerNorm(x + Sublayer(x))`` as in [V] §3.1 and PyTorch's default;
    ``norm_first=True`` gives pre-LN ``x + Sublayer(LayerNorm(x))``, easier to train deep.
    ``EncoderLayer.from_torch(m)`` copies a ``torch.nn.TransformerEncoderLayer``.
    ``forward(x, mask)`` returns ``forward_with_weights(x, mask)``'s output alone.

    Args:
        d_model: model width ``D``.
        num_heads: attention heads ``H``.
        d_ff: feed-forward hidden width.
        dropout: dropout on attention weights, hidden activations and each sublayer's output.
        num_kv_heads: key/value heads of the self-attention (GQA); None = ``num_heads``.
        norm_first: pre-LN instead of post-LN.
        activation: ``"relu"`` or ``"gelu"``.
        layer_norm_eps: the LayerNorms' epsilon.
        bias: whether every linear map, attention projection and LayerNorm has a bias
            (PyTorch's ``bias``).
        device: where to create the parameters.
        dtype: dtype of the parameters.

    Shapes:
        x ``(B, S, D)``, mask broadcastable to ``(B, H, S, S)`` -> ``(B, S, D)``.

    Introduced in chapter 06 (the encoder–decoder Transformer).
    """

    _order = ("self_attn", "ffn", "self_attn_norm", "ffn_norm")
    _torch_class = nn.TransformerEncoderLayer
    _torch_names = {"self_attn": "self_attn", "self_attn_norm": "norm1", "ffn_norm": "norm2"}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, cross_attention=False, **kwargs)

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
        self._check(x, mask)
        return self._forward(x, mask, need_weights)

    def _check(self, x: torch.Tensor, mask: torch.Tensor | None) -> None:
        attn = self.self_attn
        check_attention_inputs(x, x, x, mask, attn.d_model, attn.num_heads)

    def _forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, need_weights: bool
    ) -> tuple[torch.Tensor, Weights]:
        x, weights = self._sublayer(
            x, self.self_attn_norm, lambda h: self.self_attn._forward(h, h, h, mask, need_weights)
        )
        return self._feed_forward(x), weights  # (B, S, D), (B, H, S, S) or None


class Encoder(_Stack):
    """A stack of ``num_layers`` encoder layers: one output vector per input token ([V] §3.1).

    The output is ``z = (z_1, ..., z_S)``, as long as the input, not one fixed-length vector.
    Pre-LN stacks (``norm_first=True``) end with a final LayerNorm, as is usual for them.
    ``forward(x, mask)`` returns ``forward_with_weights(x, mask)``'s output alone.

    Args:
        num_layers: number of layers ``N`` (the paper: 6).
        *layer_args: passed to every ``EncoderLayer`` (``d_model, num_heads, d_ff, dropout``).
        **layer_kwargs: passed to every ``EncoderLayer`` (``norm_first``, ``activation``, ...).

    Shapes:
        x ``(B, S, D)``, mask broadcastable to ``(B, H, S, S)`` -> ``(B, S, D)``.

    Introduced in chapter 06 (the encoder–decoder Transformer).
    """

    def __init__(self, num_layers: int, *layer_args, **layer_kwargs) -> None:
        super().__init__(EncoderLayer, num_layers, *layer_args, **layer_kwargs)

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
        self.layers[0]._check(x, mask)  # once: every layer sees the same shapes
        return self._forward(x, mask, need_weights)

    def _forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, need_weights: bool
    ) -> tuple[torch.Tensor, Weights]:
        all_weights = []
        for layer in self.layers:
            x, weights = layer._forward(x, mask, need_weights)  # (B, S, D)
            all_weights.append(weights)
        stacked = torch.stack(all_weights) if need_weights else None  # N x (B, H, S, S)
        return self._final_norm(x), stacked  # (B, S, D), (N, B, H, S, S) or None
