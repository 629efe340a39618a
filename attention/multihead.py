"""Multi-head attention: h heads that split the feature dimension, never the sequence.

One path serves every variant: multi-head attention (``num_kv_heads == num_heads``),
grouped-query and multi-query attention (fewer key/value heads, chapter 08), with or without a
KV cache. ``GroupedQueryAttention`` (in ``gqa.py``) only changes the constructor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_attention_inputs, check_int, check_probability
from .core import _sdpa
from .kv_cache import LayerCache
from .masks import causal_mask

__all__ = ["MultiHeadAttention"]


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    B, T, _ = x.shape  # batch, tokens, heads * head width
    return x.view(B, T, heads, -1).transpose(1, 2)  # (B, T, H*Dh) -> (B, H, T, Dh)


def _attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    dropout_p: float,
    need_weights: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attend per head, explicitly (weights returned) or with PyTorch's fused kernel.

    ``k`` and ``v`` may have fewer heads than ``q`` (``Hkv`` dividing ``H``): query head ``h``
    reads key/value head ``h // G``. Shapes: q ``(B, H, T, Dh)``, k/v ``(B, Hkv, S, Dh)`` ->
    out ``(B, H, T, Dh)``, weights ``(B, H, T, S)`` or None.
    """
    G = q.shape[1] // k.shape[1]  # query heads per key/value head
    if G > 1:
        k = k.repeat_interleave(G, dim=1)  # (B, Hkv, S, Dh) -> (B, H, S, Dh)
        v = v.repeat_interleave(G, dim=1)  # (B, Hkv, S, Dh) -> (B, H, S, Dh)
    if need_weights:
        return _sdpa(q, k, v, mask, dropout_p=dropout_p)
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p), None
    # Let a query with no allowed key attend to everything, then zero its output: the fused
    # kernel then never sees a fully masked row (NaN on some backends), and the zeroed rows
    # pass no gradient, as in the explicit path.
    has_key = mask.any(dim=-1, keepdim=True)  # (..., T, 1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | ~has_key, dropout_p=dropout_p)
    return out.masked_fill(~has_key, 0.0), None  # (B, H, T, Dh)


class MultiHeadAttention(nn.Module):
    r"""Multi-head scaled dot-product attention with separate Q, K, V and output projections.

    ``MultiHead(Q, K, V) = Concat(head_1, ..., head_H) W^O`` with
    ``head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)`` (Vaswani et al. 2017, §3.2.2). Head ``i``
    owns features ``i*Dh .. (i+1)*Dh - 1`` of each projection and attends over the **whole**
    sequence; the layer has ``4 D^2 + 4 D`` parameters whatever the number of heads. With
    ``num_kv_heads < num_heads``, query heads share key/value heads in groups (chapter 08):
    only ``k_proj`` and ``v_proj`` shrink, to ``D -> num_kv_heads * Dh``.

    Args:
        d_model: model width ``D``; must be divisible by ``num_heads``.
        num_heads: number of heads ``H``; each has width ``Dh = D // H``.
        dropout: probability of zeroing an attention weight, in training mode only.
        bias: whether the four projections have biases.
        num_kv_heads: key/value heads ``Hkv``, dividing ``num_heads``; None = ``num_heads``.
        device: where to create the parameters.
        dtype: dtype of the parameters.

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
        num_kv_heads: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_int("d_model", d_model)
        check_int("num_heads", num_heads)
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        check_int("num_kv_heads", num_kv_heads)
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        if num_heads % num_kv_heads != 0:
            raise ValueError(
                f"num_heads={num_heads} is not divisible by num_kv_heads={num_kv_heads}: every "
                "key/value head must serve the same number of query heads"
            )
        check_probability("dropout", dropout)
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.num_kv_heads, self.dropout = num_kv_heads, float(dropout)
        factory = {"device": device, "dtype": dtype, "bias": bias}
        kv_width = num_kv_heads * self.head_dim  # D for multi-head attention
        # Three different learned projections (not one shared matrix, and not two).
        self.q_proj = nn.Linear(d_model, d_model, **factory)
        self.k_proj = nn.Linear(d_model, kv_width, **factory)
        self.v_proj = nn.Linear(d_model, kv_width, **factory)
        self.out_proj = nn.Linear(d_model, d_model, **factory)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        need_weights: bool = True,
        *,
        cache: LayerCache | None = None,
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
            cache: a ``LayerCache`` for step-by-step decoding (chapter 08), updated in place.
                Without ``key`` (self-attention) the new tokens' keys and values are appended
                to ``cache.self_k``/``self_v`` and the queries attend causally to all cached
                tokens, the new ones being the last (``causal_mask(T, S)``, bottom right);
                ``mask`` must then be None. With ``key`` (cross-attention) the keys and values
                are projected at the first call, kept in ``cache.cross_k``/``cross_v`` and
                reused: ``key`` is then assumed not to change.

        Returns:
            ``(out, weights)``. Queries whose mask row is all False get a zero attention output
            (so ``out`` is ``out_proj.bias`` there) and zero weights, never NaN.

        Shapes:
            query ``(B, T, D)``, key/value ``(B, S, D)``, mask ``(B, H, T, S)`` (broadcastable)
            -> out ``(B, T, D)``, weights ``(B, H, T, S)`` or ``None``. With a self-attention
            cache of ``P`` tokens, ``S = P + T``.

        Introduced in chapter 04 (multi-head attention); the cache in chapter 08.
        """
        cross = key is not None
        key = query if key is None else key
        value = key if value is None else value
        check_attention_inputs(query, key, value, mask, self.d_model, self.num_heads)
        if cache is not None and not isinstance(cache, LayerCache):
            raise ValueError(f"cache must be a LayerCache, got {type(cache).__name__}")
        if cache is not None and not cross and mask is not None:
            raise ValueError("pass mask=None with a cache: the cache applies the causal mask")
        return self._forward(query, key, value, mask, need_weights, cache, cross)

    def _forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None,
        need_weights: bool,
        cache: LayerCache | None = None,
        cross: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``forward`` without the checks: the layers call it after validating their inputs."""
        B, T, D = query.shape  # batch, query tokens, width
        H, Hkv = self.num_heads, self.num_kv_heads  # query heads, key/value heads
        # Split the *features* into H heads; every head still sees all T (and S) tokens.
        q = _split_heads(self.q_proj(query), H)  # (B, T, D) -> (B, H, T, Dh)
        if cache is not None and cross and cache.cross_k is not None:
            k, v = cache.cross_k, cache.cross_v  # (B, Hkv, S, Dh), projected at the first step
        else:
            k = _split_heads(self.k_proj(key), Hkv)  # (B, S, Hkv*Dh) -> (B, Hkv, S, Dh)
            v = _split_heads(self.v_proj(value), Hkv)  # (B, S, Hkv*Dh) -> (B, Hkv, S, Dh)
        if cache is not None and cross:
            cache.cross_k, cache.cross_v = k, v
        elif cache is not None:  # self-attention: the new tokens join the cached ones
            if cache.self_k is not None:
                k = torch.cat([cache.self_k, k], dim=2)  # (B, Hkv, P, Dh) + (B, Hkv, T, Dh)
                v = torch.cat([cache.self_v, v], dim=2)  # -> (B, Hkv, P + T, Dh)
            cache.self_k, cache.self_v = k, v
            mask = causal_mask(T, k.shape[2], device=query.device)  # (T, P + T), bottom right
        dropout_p = self.dropout if self.training else 0.0
        out, weights = _attend(q, k, v, mask, dropout_p, need_weights)  # (B, H, T, Dh)
        # Merge the heads back: transpose first, so that each token's H pieces sit side by side.
        out = out.transpose(1, 2).reshape(B, T, D)  # (B, H, T, Dh) -> (B, T, H, Dh) -> (B, T, D)
        return self.out_proj(out), weights  # (B, T, D), (B, H, T, S) or None

    @classmethod
    def from_torch(cls, m: nn.MultiheadAttention) -> MultiHeadAttention:
        """Build a MultiHeadAttention with the weights of a ``torch.nn.MultiheadAttention``.

        PyTorch stores ``W^Q; W^K; W^V`` stacked in ``in_proj_weight`` ``(3D, D)``; they are
        split into ``q_proj``, ``k_proj`` and ``v_proj``. Remember that PyTorch's boolean masks
        mean True = ignore: pass ``~attn_mask`` here (see ``attention.masks``).

        Args:
            m: a ``torch.nn.MultiheadAttention`` with ``batch_first=True`` and
                ``kdim == vdim == embed_dim``, with or without biases (``bias=False``),
                without ``add_bias_kv`` or ``add_zero_attn``.

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
        bias = m.in_proj_bias is not None
        if bias != (m.out_proj.bias is not None):
            problems.append("in_proj_bias and out_proj.bias: one is None, the other not")
        if m.bias_k is not None or m.add_zero_attn:
            problems.append("add_bias_kv=True or add_zero_attn=True (no counterpart here)")
        if problems:
            raise ValueError("cannot convert this nn.MultiheadAttention: " + "; ".join(problems))
        w = m.in_proj_weight
        new = cls(
            m.embed_dim, m.num_heads, dropout=m.dropout, bias=bias, num_kv_heads=m.num_heads,
            device=w.device, dtype=w.dtype,
        )  # fmt: skip
        w_q, w_k, w_v = w.detach().chunk(3)  # (3D, D) -> 3 x (D, D)
        b_q, b_k, b_v = m.in_proj_bias.detach().chunk(3) if bias else (None,) * 3  # 3 x (D,)
        with torch.no_grad():
            for proj, weight, b in (
                (new.q_proj, w_q, b_q),
                (new.k_proj, w_k, b_k),
                (new.v_proj, w_v, b_v),
                (new.out_proj, m.out_proj.weight, m.out_proj.bias),
            ):
                proj.weight.copy_(weight)
                if b is not None:
                    proj.bias.copy_(b)
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
        if self.num_kv_heads != self.num_heads:
            raise ValueError(
                f"to_torch needs num_kv_heads == num_heads; this module has {self.num_kv_heads} "
                f"key/value heads for {self.num_heads} query heads"
            )
        w = self.q_proj.weight
        factory = {"device": w.device, "dtype": w.dtype}
        bias = self.q_proj.bias is not None
        m = nn.MultiheadAttention(
            self.d_model, self.num_heads, self.dropout, bias=bias, batch_first=True, **factory
        )
        projs = (self.q_proj, self.k_proj, self.v_proj)
        with torch.no_grad():
            m.in_proj_weight.copy_(torch.cat([p.weight for p in projs]))  # 3 x (D, D) -> (3D, D)
            m.out_proj.weight.copy_(self.out_proj.weight)
            if bias:
                m.in_proj_bias.copy_(torch.cat([p.bias for p in projs]))  # 3 x (D,) -> (3D,)
                m.out_proj.bias.copy_(self.out_proj.bias)
        return m.train(self.training)
