"""What encoder and decoder layers share: the feed-forward block and the residual + LayerNorm."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

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
        device: where to create the parameters (keyword only).
        dtype: dtype of the parameters (keyword only).

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
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("d_model", d_model), ("d_ff", d_ff)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.activation = activation
        self.linear1 = nn.Linear(d_model, d_ff, device=device, dtype=dtype)
        self.linear2 = nn.Linear(d_ff, d_model, device=device, dtype=dtype)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Transform each token; shapes ``(B, T, D) -> (B, T, D)``. Chapter 06."""
        hidden = _ACTIVATIONS[self.activation](self.linear1(x))  # (B, T, D) -> (B, T, d_ff)
        return self.linear2(self.dropout(hidden))  # (B, T, d_ff) -> (B, T, D)


def _sublayer(
    x: torch.Tensor,
    norm: nn.LayerNorm,
    dropout: nn.Dropout,
    norm_first: bool,
    fn: Callable[[torch.Tensor], tuple[torch.Tensor, Weights]],
) -> tuple[torch.Tensor, Weights]:
    """Post-LN ``norm(x + fn(x))`` ([V] §3.1) or pre-LN ``x + fn(norm(x))`` (Xiong et al. 2020)."""
    if norm_first:
        out, weights = fn(norm(x))
        return x + dropout(out), weights
    out, weights = fn(x)
    return norm(x + dropout(out)), weights


def _check_torch_layer(m: nn.Module, kind: type) -> str:
    """Return the activation name of a torch Transformer layer, or say why it cannot convert."""
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
    return act


def _copy_common(new: nn.Module, m: nn.Module, norms: dict[str, str]) -> nn.Module:
    """Copy the feed-forward weights and the LayerNorms of torch layer ``m`` into ``new``."""
    new.ffn.linear1.load_state_dict(m.linear1.state_dict())
    new.ffn.linear2.load_state_dict(m.linear2.state_dict())
    for ours, theirs in norms.items():
        getattr(new, ours).load_state_dict(getattr(m, theirs).state_dict())
    return new.train(m.training)
