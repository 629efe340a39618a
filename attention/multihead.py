"""Multi-head attention: h heads that split the feature dimension, never the sequence."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .core import scaled_dot_product_attention

__all__ = ["MultiHeadAttention"]


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


class MultiHeadAttention(nn.Module):
    r"""Multi-head scaled dot-product attention with separate Q, K, V and output projections.

    ``MultiHead(Q, K, V) = Concat(head_1, ..., head_H) W^O`` with
    ``head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)`` (Vaswani et al. 2017, §3.2.2). Head ``i``
    owns features ``i*Dh .. (i+1)*Dh - 1`` of each projection and attends over the **whole**
    sequence; the layer has ``4 D^2 + 4 D`` parameters whatever the number of heads.

    Args:
        d_model: model width ``D``; must be divisible by ``num_heads``.
        num_heads: number of heads ``H``; each has width ``Dh = D // H``.
        dropout: probability of zeroing an attention weight, in training mode only.
        bias: whether the four projections have biases.
        device: where to create the parameters (keyword only).
        dtype: dtype of the parameters (keyword only).

    Shapes:
        query ``(B, T, D)``, key and value ``(B, S, D)`` -> out ``(B, T, D)``,
        weights ``(B, H, T, S)``.

    Introduced in chapter 04 (multi-head attention).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_positive_int("d_model", d_model)
        _check_positive_int("num_heads", num_heads)
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.dropout = float(dropout)
        factory = {"device": device, "dtype": dtype, "bias": bias}
        # Three different learned projections (not one shared matrix, and not two).
        self.q_proj = nn.Linear(d_model, d_model, **factory)
        self.k_proj = nn.Linear(d_model, d_model, **factory)
        self.v_proj = nn.Linear(d_model, d_model, **factory)
        self.out_proj = nn.Linear(d_model, d_model, **factory)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        need_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from every query token to every key token, in each head.

        Args:
            query: the tokens that ask, batch first.
            key: the tokens that are looked at; defaults to ``query`` (self-attention).
            value: the tokens whose content is mixed; defaults to ``key``.
            mask: optional bool tensor broadcastable to ``(B, H, T, S)``; **True = may attend**.
                Use ``(T, S)`` for a causal mask and ``(B, 1, 1, S)`` for key padding. A 3-D
                ``(B, T, S)`` mask is refused (it would broadcast B against H): add the head
                dim with ``mask[:, None]``.
            need_weights: if True, compute attention explicitly and return the per-head weights;
                if False, call PyTorch's fused ``F.scaled_dot_product_attention`` (faster, less
                memory) and return ``None`` for the weights.

        Returns:
            ``(out, weights)``. Queries whose mask row is all False get a zero attention output
            (so ``out`` is ``out_proj.bias`` there) and zero weights, never NaN.

        Shapes:
            query ``(B, T, D)``, key/value ``(B, S, D)``, mask ``(B, H, T, S)`` (broadcastable)
            -> out ``(B, T, D)``, weights ``(B, H, T, S)`` or ``None``.

        Introduced in chapter 04 (multi-head attention).
        """
        key = query if key is None else key
        value = key if value is None else value
        self._check_inputs(query, key, value, mask)
        B, T, D = query.shape  # batch, query tokens, width
        S = key.shape[1]  # key tokens
        H, Dh = self.num_heads, self.head_dim  # heads, head width
        dropout_p = self.dropout if self.training else 0.0

        # Split the *features* into H heads; every head still sees all T (and S) tokens.
        q = self.q_proj(query).view(B, T, H, Dh).transpose(1, 2)  # (B, T, D) -> (B, H, T, Dh)
        k = self.k_proj(key).view(B, S, H, Dh).transpose(1, 2)  # (B, S, D) -> (B, H, S, Dh)
        v = self.v_proj(value).view(B, S, H, Dh).transpose(1, 2)  # (B, S, D) -> (B, H, S, Dh)

        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p=dropout_p)
        else:
            weights = None
            has_key = None if mask is None else mask.any(dim=-1, keepdim=True)  # (..., T, 1)
            # Let a query with no allowed key attend to everything, then zero its output: the
            # fused kernel then never sees a fully masked row (NaN on some backends), and the
            # zeroed rows pass no gradient, as in the explicit path.
            fused_mask = None if mask is None else mask | ~has_key  # (..., T, S)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=fused_mask, dropout_p=dropout_p)
            if has_key is not None:
                out = out.masked_fill(~has_key, 0.0)  # (B, H, T, Dh)

        # Merge the heads back: transpose first, so that each token's H pieces sit side by side.
        out = out.transpose(1, 2).reshape(B, T, D)  # (B, H, T, Dh) -> (B, T, H, Dh) -> (B, T, D)
        return self.out_proj(out), weights  # (B, T, D), (B, H, T, S) or None

    def _check_inputs(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> None:
        """Raise ValueError naming the shapes when the inputs do not fit this layer."""
        D = self.d_model
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
            if t.dim() != 3:
                raise ValueError(
                    f"{name} must have 3 dims (batch, tokens, d_model), got shape "
                    f"{tuple(t.shape)}; add a batch dim with {name}[None] for a single sequence"
                )
            if t.shape[-1] != D:
                raise ValueError(
                    f"{name} has width {t.shape[-1]} (shape {tuple(t.shape)}) but the layer was "
                    f"built with d_model={D}"
                )
        if not query.shape[0] == key.shape[0] == value.shape[0]:
            raise ValueError(
                f"query, key and value must have the same batch size, got shapes "
                f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
            )
        if key.shape[1] != value.shape[1]:
            raise ValueError(
                f"key and value must have the same number of tokens S, got shapes "
                f"{tuple(key.shape)} and {tuple(value.shape)}"
            )
        if mask is None:
            return
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(
                f"mask must be a bool tensor (True = may attend), got {got}; see "
                "attention.masks for conversions from other conventions"
            )
        B, T, S, H = query.shape[0], query.shape[1], key.shape[1], self.num_heads
        if mask.dim() == 3 and mask.shape[0] != 1:
            raise ValueError(
                f"a 3-D mask of shape {tuple(mask.shape)} is ambiguous (it would broadcast its "
                "first dim against the heads): use mask[:, None] for (B, 1, T, S)"
            )
        full = (B, H, T, S)
        try:
            ok = mask.dim() <= 4 and tuple(torch.broadcast_shapes(mask.shape, full)) == full
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to (B, H, T, S) = {full}"
            )
        if mask.device != query.device:
            raise ValueError(f"mask is on {mask.device} but query is on {query.device}")

    @classmethod
    def from_torch(cls, m: nn.MultiheadAttention) -> MultiHeadAttention:
        """Build a MultiHeadAttention with the weights of a ``torch.nn.MultiheadAttention``.

        PyTorch stores ``W^Q; W^K; W^V`` stacked in ``in_proj_weight`` ``(3D, D)``; they are
        split into ``q_proj``, ``k_proj`` and ``v_proj``. Remember that PyTorch's boolean masks
        mean True = ignore: pass ``~attn_mask`` here (see ``attention.masks``).

        Args:
            m: a ``torch.nn.MultiheadAttention`` with ``batch_first=True``, biases, and
                ``kdim == vdim == embed_dim``, without ``add_bias_kv`` or ``add_zero_attn``.

        Returns:
            A new module on ``m``'s device and dtype, in ``m``'s training mode, whose outputs
            and per-head weights equal ``m``'s (``average_attn_weights=False``).

        Shapes:
            ``in_proj_weight`` ``(3D, D)`` -> three ``(D, D)`` weights.

        Introduced in chapter 04 (multi-head attention).
        """
        if not isinstance(m, nn.MultiheadAttention):
            raise ValueError(f"expected a torch.nn.MultiheadAttention, got {type(m).__name__}")
        problems = []
        if not m.batch_first:
            problems.append("batch_first=False (build it with batch_first=True)")
        if not m._qkv_same_embed_dim:
            problems.append(f"kdim={m.kdim} and vdim={m.vdim} differ from embed_dim={m.embed_dim}")
        if m.in_proj_bias is None or m.out_proj.bias is None:
            problems.append("bias=False (this conversion needs bias=True)")
        if m.bias_k is not None or m.add_zero_attn:
            problems.append("add_bias_kv=True or add_zero_attn=True (no counterpart here)")
        if problems:
            raise ValueError("cannot convert this nn.MultiheadAttention: " + "; ".join(problems))
        w = m.in_proj_weight
        new = cls(m.embed_dim, m.num_heads, dropout=m.dropout, device=w.device, dtype=w.dtype)
        w_q, w_k, w_v = w.detach().chunk(3)  # (3D, D) -> 3 x (D, D)
        b_q, b_k, b_v = m.in_proj_bias.detach().chunk(3)  # (3D,) -> 3 x (D,)
        with torch.no_grad():
            for proj, weight, bias in (
                (new.q_proj, w_q, b_q),
                (new.k_proj, w_k, b_k),
                (new.v_proj, w_v, b_v),
                (new.out_proj, m.out_proj.weight, m.out_proj.bias),
            ):
                proj.weight.copy_(weight)
                proj.bias.copy_(bias)
        return new.train(m.training)

    def to_torch(self) -> nn.MultiheadAttention:
        """Build a ``torch.nn.MultiheadAttention(batch_first=True)`` with these weights.

        Returns:
            A new module on this module's device and dtype, in its training mode. Its boolean
            masks mean True = ignore: pass it ``~mask``.

        Shapes:
            three ``(D, D)`` weights -> ``in_proj_weight`` ``(3D, D)``.

        Introduced in chapter 04 (multi-head attention).
        """
        if self.q_proj.bias is None:
            raise ValueError("to_torch needs bias=True (from_torch accepts only biased modules)")
        w = self.q_proj.weight
        factory = {"device": w.device, "dtype": w.dtype}
        m = nn.MultiheadAttention(
            self.d_model, self.num_heads, self.dropout, batch_first=True, **factory
        )
        projs = (self.q_proj, self.k_proj, self.v_proj)
        with torch.no_grad():
            m.in_proj_weight.copy_(torch.cat([p.weight for p in projs]))  # 3 x (D, D) -> (3D, D)
            m.in_proj_bias.copy_(torch.cat([p.bias for p in projs]))  # 3 x (D,) -> (3D,)
            m.out_proj.weight.copy_(self.out_proj.weight)
            m.out_proj.bias.copy_(self.out_proj.bias)
        return m.train(self.training)
