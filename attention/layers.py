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
        bias: whether the two linear layers have biases.
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
        bias: bool = True,
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
        self.linear1 = nn.Linear(d_model, d_ff, bias=bias, **factory)
        self.linear2 = nn.Linear(d_ff, d_model, bias=bias, **factory)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Transform each token; shapes ``(B, T, D) -> (B, T, D)``. Chapter 06."""
        hidden = _ACTIVATIONS[self.activation](self.linear1(x))  # (B, T, D) -> (B, T, d_ff)
        return self.linear2(self.dropout(hidden))  # (B, T, d_ff) -> (B, T, D)


def _activation_name(act: object) -> str | None:
    """Name a PyTorch layer's activation as ``FeedForward`` knows it, or None if it has none.

    PyTorch accepts ``"relu"``/``"gelu"`` (stored as ``F.relu``/``F.gelu``) and modules; its
    encoder layer treats any ``nn.ReLU``/``nn.GELU`` instance as relu/gelu.
    """
    if act is F.relu or isinstance(act, nn.ReLU):
        return "relu"
    if act is F.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
        return "gelu"
    return None


def _bias_flags(m: nn.Module) -> set[bool]:
    """Whether each linear map, LayerNorm and attention of ``m`` has a bias: {True}, {False}
    or both (a layer built by hand with some biases removed)."""
    flags = set()
    for mod in m.modules():
        if isinstance(mod, (nn.Linear, nn.LayerNorm)):
            flags.add(mod.bias is not None)
        elif isinstance(mod, nn.MultiheadAttention):
            flags.add(mod.in_proj_bias is not None)
    return flags


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
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.norm_first = norm_first
        mha = {"dropout": dropout, "bias": bias, **factory}
        # Built in this order (self, cross, feed-forward: their seeded weights depend on it),
        # then registered in the subclass's _order (the order of parameters and state_dict).
        parts = {
            "self_attn": MultiHeadAttention(d_model, num_heads, num_kv_heads=num_kv_heads, **mha)
        }
        self.cross_attn = self.cross_attn_norm = None
        if cross_attention:
            parts["cross_attn"] = MultiHeadAttention(d_model, num_heads, **mha)
        parts["ffn"] = FeedForward(d_model, d_ff, dropout, activation, bias, **factory)
        for name in ("self_attn_norm", "cross_attn_norm", "ffn_norm"):
            parts[name] = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
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
            m: a layer with ``batch_first=True`` (post- or pre-LN), with or without biases
                (``bias=False``), whose activation is ``"relu"``, ``"gelu"``, ``F.relu``,
                ``F.gelu``, ``nn.ReLU()`` or ``nn.GELU()``. ``nn.GELU(approximate="tanh")``
                is refused: PyTorch's encoder layer computes exact gelu for it on its fast
                path (inference without gradients) and the tanh form otherwise.

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
        act = _activation_name(m.activation)
        if act is None:
            problems.append(
                f"activation {m.activation!r} (only relu and exact gelu convert: 'relu', "
                "'gelu', F.relu, F.gelu, nn.ReLU(), nn.GELU())"
            )
        biases = _bias_flags(m)
        if len(biases) > 1:
            problems.append("some sublayers have biases and others not (bias=True or False)")
        if problems:
            raise ValueError(f"cannot convert this {kind.__name__}: " + "; ".join(problems))
        w = m.linear1.weight
        new = cls(
            m.self_attn.embed_dim, m.self_attn.num_heads, m.linear1.out_features, m.dropout.p,
            norm_first=m.norm_first, activation=act, layer_norm_eps=m.norm1.eps,
            bias=biases == {True}, device=w.device, dtype=w.dtype,
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
            shape, bias = last.normalized_shape, last.bias is not None
            self.norm = nn.LayerNorm(shape, eps=last.eps, bias=bias, **factory)

    def _final_norm(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.norm is None else self.norm(x)
