"""What encoder and decoder layers share: the feed-forward block, the residual + LayerNorm
around each sublayer, the conversion from PyTorch's layers, and the stack of layers."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_int, check_probability
from .multihead import MultiHeadAttention

__all__ = ["FeedForward"]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}
Weights = torch.Tensor | None


class FeedForward(nn.Module):
    """Apply the same two-layer MLP to every token: ``W2 act(W1 x + b1) + b2`` ([V] §3.3).

    Args:
        d_model: model width ``D``.
        d_ff: hidden width (the paper: ``4 D`` = 2048).
        dropout: dropout on the hidden activations, in training mode only.
        activation: ``"relu"`` (the paper) or ``"gelu"``.
        **factory: ``device`` and ``dtype`` of the parameters.

    Shapes:
        ``(B, T, D)`` -> ``(B, T, D)``; each token independently.

    Introduced in chapter 06 (the encoder–decoder Transformer).
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        dropout: float = 0.0,
        activation: str = "relu",
        **factory,
    ) -> None:
        super().__init__()
        check_int("d_model", d_model)
        check_int("d_ff", d_ff)
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        check_probability("dropout", dropout)
        self.activation = activation
        self.linear1 = nn.Linear(d_model, d_ff, **factory)
        self.linear2 = nn.Linear(d_ff, d_model, **factory)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Transform each token; shapes ``(B, T, D) -> (B, T, D)``. Chapter 06."""
        hidden = _ACTIVATIONS[self.activation](self.linear1(x))  # (B, T, D) -> (B, T, d_ff)
        return self.linear2(self.dropout(hidden))  # (B, T, d_ff) -> (B, T, D)


def _without_weights(self: nn.Module, *args, **kwargs) -> torch.Tensor:
    """Run ``forward_with_weights`` with ``need_weights=False``; return its output alone."""
    return self.forward_with_weights(*args, need_weights=False, **kwargs)[0]


class _Layer(nn.Module):
    """Base of ``EncoderLayer`` and ``DecoderLayer``: self-attention, optional cross-attention
    and a feed-forward block, each with its residual + LayerNorm; and ``from_torch``.

    Subclasses define ``forward_with_weights`` and name their PyTorch counterpart:
    ``_torch_class`` and ``_torch_names`` (our submodule -> theirs, attentions and norms).
    """

    _torch_class: type[nn.Module]
    _torch_names: dict[str, str]
    _order: tuple[str, ...]  # submodules in registration order
    forward = _without_weights

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        *,
        cross_attention: bool,
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
        # Built in this order (self, cross, feed-forward: their seeded weights depend on it),
        # then registered in the subclass's _order (the order of parameters and state_dict).
        parts = {
            "self_attn": MultiHeadAttention(
                d_model, num_heads, dropout, num_kv_heads=num_kv_heads, **factory
            )
        }
        self.cross_attn = self.cross_attn_norm = None
        if cross_attention:
            parts["cross_attn"] = MultiHeadAttention(d_model, num_heads, dropout, **factory)
        parts["ffn"] = FeedForward(d_model, d_ff, dropout, activation, **factory)
        for name in ("self_attn_norm", "cross_attn_norm", "ffn_norm"):
            parts[name] = nn.LayerNorm(d_model, eps=layer_norm_eps, **factory)
        for name in self._order:
            if name.startswith("self") or name.startswith("ffn") or cross_attention:
                setattr(self, name, parts[name])
        self.dropout = nn.Dropout(dropout)

    def _sublayer(
        self,
        x: torch.Tensor,
        norm: nn.LayerNorm,
        fn: Callable[[torch.Tensor], tuple[torch.Tensor, Weights]],
    ) -> tuple[torch.Tensor, Weights]:
        """Post-LN ``norm(x + fn(x))`` ([V] §3.1) or pre-LN ``x + fn(norm(x))`` (Xiong 2020)."""
        if self.norm_first:
            out, weights = fn(norm(x))
            return x + self.dropout(out), weights
        out, weights = fn(x)
        return norm(x + self.dropout(out)), weights

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._sublayer(x, self.ffn_norm, lambda h: (self.ffn(h), None))[0]

    @classmethod
    def from_torch(cls, m: nn.Module) -> _Layer:
        """Build a layer with the weights of PyTorch's ``TransformerEncoderLayer`` (for an
        ``EncoderLayer``) or ``TransformerDecoderLayer`` (for a ``DecoderLayer``).

        Args:
            m: a layer with ``batch_first=True``, relu or gelu, biases (post- or pre-LN).

        Returns:
            A new layer on ``m``'s device and dtype, in ``m``'s mode, equal to ``m`` when
            given the inverted masks (torch's True = ignore).

        Introduced in chapter 06 (the encoder–decoder Transformer).
        """
        kind = cls._torch_class
        if not isinstance(m, kind):
            raise ValueError(f"expected a torch.nn.{kind.__name__}, got {type(m).__name__}")
        problems = []
        if not m.self_attn.batch_first:
            problems.append("batch_first=False (build it with batch_first=True)")
        act = next((n for n, f in _ACTIVATIONS.items() if m.activation is f), None)
        if act is None:
            problems.append(f"activation {m.activation!r} (only 'relu' and 'gelu' convert)")
        if m.linear1.bias is None or m.norm1.bias is None:
            problems.append("bias=False (this conversion needs bias=True)")
        if problems:
            raise ValueError(f"cannot convert this {kind.__name__}: " + "; ".join(problems))
        w = m.linear1.weight
        new = cls(
            m.self_attn.embed_dim, m.self_attn.num_heads, m.linear1.out_features, m.dropout.p,
            norm_first=m.norm_first, activation=act, layer_norm_eps=m.norm1.eps,
            device=w.device, dtype=w.dtype,
        )  # fmt: skip
        new.ffn.linear1.load_state_dict(m.linear1.state_dict())
        new.ffn.linear2.load_state_dict(m.linear2.state_dict())
        for ours, theirs in cls._torch_names.items():
            theirs = getattr(m, theirs)
            if isinstance(theirs, nn.MultiheadAttention):
                setattr(new, ours, MultiHeadAttention.from_torch(theirs))
            else:
                getattr(new, ours).load_state_dict(theirs.state_dict())
        return new.train(m.training)


class _Stack(nn.Module):
    """``num_layers`` copies of a layer class, and a final LayerNorm for pre-LN stacks."""

    forward = _without_weights

    def __init__(self, layer_cls: type[_Layer], num_layers: int, *args, **kwargs) -> None:
        super().__init__()
        check_int("num_layers", num_layers)
        self.layers = nn.ModuleList(layer_cls(*args, **kwargs) for _ in range(num_layers))
        last = self.layers[-1].ffn_norm  # the final norm is made like the layers' norms
        self.norm = None
        if self.layers[0].norm_first:  # pre-LN stacks end with a LayerNorm, as is usual
            factory = {"device": last.weight.device, "dtype": last.weight.dtype}
            self.norm = nn.LayerNorm(last.normalized_shape, eps=last.eps, **factory)

    def _final_norm(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.norm is None else self.norm(x)
