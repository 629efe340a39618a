"""Additive attention (Bahdanau et al. 2015): a one-layer network scores each query–key pair."""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_additive_inputs, check_int
from .core import masked_softmax

__all__ = ["AdditiveAttention", "additive_attention"]


def additive_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    w_q: torch.Tensor,
    w_k: torch.Tensor,
    v_a: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Score every query–key pair with ``v_a · tanh(W_q q + W_k k)`` and average the values.

    Bahdanau et al. (2015, appendix A.1.2) score ``e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)``:
    a feed-forward network with one hidden layer of width ``Dh`` per pair. The query and the key
    may have different widths. Masked scores become ``-inf`` before the softmax over the keys;
    a query with no allowed key gets zero weights and a zero output, not NaN.

    Args:
        query: the queries ``q_i`` (Bahdanau: the decoder state).
        key: the keys ``k_j`` (Bahdanau: the encoder's annotations ``h_j``).
        value: the values averaged by the weights (Bahdanau: the annotations again).
        w_q: the query matrix ``W_q`` (``nn.Linear.weight`` layout: out × in).
        w_k: the key matrix ``W_k``.
        v_a: the scoring vector ``v_a``.
        mask: optional bool tensor broadcastable to ``(..., T, S)``; **True = may attend**.
        bias: optional bias ``b`` inside the tanh, ``tanh(W_q q + W_k k + b)`` (keyword only).

    Returns:
        ``(out, weights)``: the attended values and the attention weights.

    Shapes:
        query ``(..., T, Dq)``, key ``(..., S, Dk)``, value ``(..., S, Dv)``, w_q ``(Dh, Dq)``,
        w_k ``(Dh, Dk)``, v_a and bias ``(Dh,)`` -> out ``(..., T, Dv)``, weights
        ``(..., T, S)``. Leading dims broadcast.

    Introduced in chapter 01 (from seq2seq to attention).
    """
    tensors = {"query": query, "key": key, "value": value, "w_q": w_q, "w_k": w_k, "v_a": v_a}
    check_additive_inputs(tensors, mask)
    if bias is not None and (not isinstance(bias, torch.Tensor) or bias.shape != v_a.shape):
        got = tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__
        raise ValueError(f"bias must be a tensor of shape {tuple(v_a.shape)} (Dh,), got {got}")
    q = query @ w_q.T  # (..., T, Dq) @ (Dq, Dh) -> (..., T, Dh)
    k = key @ w_k.T  # (..., S, Dk) @ (Dk, Dh) -> (..., S, Dh)
    if bias is not None:
        k = k + bias
    # Every (query, key) pair gets its own hidden vector: T·S·Dh values, not a matrix product.
    hidden = torch.tanh(q[..., :, None, :] + k[..., None, :, :])  # -> (..., T, S, Dh)
    # A matrix (not vector) product, so that FlopCounterMode counts it (it skips matrix-vector).
    scores = (hidden @ v_a[:, None]).squeeze(-1)  # (..., T, S, Dh) @ (Dh, 1) -> (..., T, S)
    weights = masked_softmax(scores, mask)  # (..., T, S), each row sums to 1 (or is all 0)
    return weights @ value, weights  # (..., T, S) @ (..., S, Dv) -> (..., T, Dv)


class AdditiveAttention(nn.Module):
    r"""Additive (Bahdanau) attention with learned ``W_q``, ``W_k`` and scoring vector ``v_a``.

    ``score(q, k) = v_a^T tanh(W_q q + W_k k)`` (Bahdanau et al. 2015); the weights are the
    softmax of the scores over the keys, and the output is the weighted average of the values.
    There is no value or output projection: like the paper, the module only decides *where* to
    look. Unlike dot-product attention, queries and keys may have different widths, and the
    scores need a ``(T, S, Dh)`` intermediate, which no fused kernel avoids.

    Args:
        query_dim: width ``Dq`` of the queries.
        key_dim: width ``Dk`` of the keys.
        hidden_dim: width ``Dh`` of the scoring network's hidden layer.
        bias: add a learned bias inside the tanh (the paper has none) (keyword only).
        device: where to create the parameters (keyword only).
        dtype: dtype of the parameters (keyword only).

    Shapes:
        query ``(..., T, Dq)``, key ``(..., S, Dk)``, value ``(..., S, Dv)`` -> out
        ``(..., T, Dv)``, weights ``(..., T, S)``.

    Introduced in chapter 01 (from seq2seq to attention).
    """

    def __init__(
        self,
        query_dim: int,
        key_dim: int,
        hidden_dim: int,
        *,
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_int("query_dim", query_dim)
        check_int("key_dim", key_dim)
        check_int("hidden_dim", hidden_dim)
        factory = {"device": device, "dtype": dtype}
        self.q_proj = nn.Linear(query_dim, hidden_dim, bias=False, **factory)  # W_q
        self.k_proj = nn.Linear(key_dim, hidden_dim, bias=bias, **factory)  # W_k (+ b)
        self.score_proj = nn.Linear(hidden_dim, 1, bias=False, **factory)  # v_a, as a 1-row matrix

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        need_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from every query to every key with additive scores.

        Args:
            query: the queries (Bahdanau: the decoder state).
            key: the keys (Bahdanau: the encoder states).
            value: the values; defaults to ``key``, as in Bahdanau's model.
            mask: optional bool tensor broadcastable to ``(..., T, S)``; **True = may attend**.
                Use ``(B, 1, S)`` for source padding.
            need_weights: if False, return ``None`` for the weights (the computation is the
                same: additive attention has no fused kernel that could skip them).

        Returns:
            ``(out, weights)``; a query with no allowed key gets zero weights and output.

        Shapes:
            query ``(..., T, Dq)``, key ``(..., S, Dk)``, value ``(..., S, Dv)``, mask
            ``(..., T, S)`` (broadcastable) -> out ``(..., T, Dv)``, weights ``(..., T, S)``
            or ``None``.

        Introduced in chapter 01 (from seq2seq to attention).
        """
        value = key if value is None else value
        out, weights = additive_attention(
            query, key, value, self.q_proj.weight, self.k_proj.weight,
            self.score_proj.weight[0], mask, bias=self.k_proj.bias,
        )  # fmt: skip
        return out, (weights if need_weights else None)
