"""Grouped-query attention (GQA) and multi-query attention (MQA): fewer key/value heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .core import scaled_dot_product_attention
from .multihead import MultiHeadAttention

__all__ = ["GroupedQueryAttention"]


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def expand_kv(kv: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Repeat each key/value head for the query heads of its group (head ``h`` uses ``h // G``).

    Args:
        kv: keys or values with ``Hkv`` heads.
        num_heads: number of query heads ``H``, a multiple of ``Hkv``.

    Returns:
        The same keys or values, each head repeated ``G = H // Hkv`` times, side by side.

    Shapes:
        ``(B, Hkv, S, Dh)`` -> ``(B, H, S, Dh)``.

    Introduced in chapter 08 (decoding with a KV cache; MQA and GQA).
    """
    groups = num_heads // kv.shape[1]
    if groups == 1:
        return kv
    return kv.repeat_interleave(groups, dim=1)  # (B, Hkv, S, Dh) -> (B, H, S, Dh)


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    dropout_p: float,
    need_weights: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attend per head, explicitly (weights returned) or with PyTorch's fused kernel.

    The fused path lets a query with no allowed key attend to everything and then zeroes its
    output, exactly as ``MultiHeadAttention`` does, so neither path yields NaN.

    Args:
        q: queries, one per head.
        k: keys, already expanded to ``H`` heads.
        v: values, already expanded to ``H`` heads.
        mask: optional bool mask, True = may attend.
        dropout_p: attention dropout probability (pass 0.0 at inference).
        need_weights: whether to return the per-head weights.

    Returns:
        ``(out, weights)``; ``weights`` is None when ``need_weights`` is False.

    Shapes:
        q ``(B, H, T, Dh)``, k/v ``(B, H, S, Dh)`` -> out ``(B, H, T, Dh)``, weights
        ``(B, H, T, S)``.

    Introduced in chapter 08 (decoding with a KV cache; MQA and GQA).
    """
    if need_weights:
        return scaled_dot_product_attention(q, k, v, mask, dropout_p=dropout_p)
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p), None
    has_key = mask.any(dim=-1, keepdim=True)  # (..., T, 1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | ~has_key, dropout_p=dropout_p)
    return out.masked_fill(~has_key, 0.0), None  # (B, H, T, Dh)


class GroupedQueryAttention(nn.Module):
    r"""Multi-head attention whose ``H`` query heads share ``Hkv`` key/value heads.

    Query heads are split into ``Hkv`` groups of ``G = H / Hkv``; the heads of a group read the
    same keys and values (Ainslie et al. 2023). ``Hkv = H`` is ordinary multi-head attention,
    ``Hkv = 1`` is multi-query attention (Shazeer 2019). Only ``k_proj`` and ``v_proj`` shrink,
    to ``D -> Hkv * Dh``, so the KV cache of a decoder shrinks by the factor ``G``.

    Args:
        d_model: model width ``D``; must be divisible by ``num_heads``.
        num_heads: number of query heads ``H``.
        num_kv_heads: number of key/value heads ``Hkv``; must divide ``num_heads``.
        dropout: probability of zeroing an attention weight, in training mode only.
        bias: whether the four projections have biases.
        device: where to create the parameters (keyword only).
        dtype: dtype of the parameters (keyword only).

    Shapes:
        query ``(B, T, D)``, key and value ``(B, S, D)`` -> out ``(B, T, D)``,
        weights ``(B, H, T, S)``.

    Introduced in chapter 08 (decoding with a KV cache; MQA and GQA).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        num_kv_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("d_model", d_model), ("num_heads", num_heads)):
            _check_positive_int(name, value)
        _check_positive_int("num_kv_heads", num_kv_heads)
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        if num_heads % num_kv_heads != 0:
            raise ValueError(
                f"num_heads={num_heads} is not divisible by num_kv_heads={num_kv_heads}: every "
                "key/value head must serve the same number of query heads"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.d_model, self.num_heads, self.num_kv_heads = d_model, num_heads, num_kv_heads
        self.head_dim = d_model // num_heads
        self.dropout = float(dropout)
        factory = {"device": device, "dtype": dtype, "bias": bias}
        kv_width = num_kv_heads * self.head_dim
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
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from every query token to every key token; each group shares its keys.

        Args:
            query: the tokens that ask, batch first.
            key: the tokens that are looked at; defaults to ``query``.
            value: the tokens whose content is mixed; defaults to ``key``.
            mask: optional bool tensor broadcastable to ``(B, H, T, S)``; True = may attend.
            need_weights: return the per-head weights (explicit path) or None (fused path).

        Returns:
            ``(out, weights)``, as ``MultiHeadAttention`` returns them.

        Shapes:
            query ``(B, T, D)``, key/value ``(B, S, D)`` -> out ``(B, T, D)``, weights
            ``(B, H, T, S)`` or None.

        Introduced in chapter 08 (decoding with a KV cache; MQA and GQA).
        """
        key = query if key is None else key
        value = key if value is None else value
        MultiHeadAttention._check_inputs(self, query, key, value, mask)  # same rules, same errors
        B, T, D = query.shape  # batch, query tokens, width
        S = key.shape[1]  # key tokens
        H, Hkv, Dh = self.num_heads, self.num_kv_heads, self.head_dim
        q = self.q_proj(query).view(B, T, H, Dh).transpose(1, 2)  # (B, T, D) -> (B, H, T, Dh)
        # Keys and values get Hkv heads only: Hkv*Dh features, not D.
        k = self.k_proj(key).view(B, S, Hkv, Dh).transpose(1, 2)  # (B, S, .) -> (B, Hkv, S, Dh)
        v = self.v_proj(value).view(B, S, Hkv, Dh).transpose(1, 2)  # (B, S, .) -> (B, Hkv, S, Dh)
        k, v = expand_kv(k, H), expand_kv(v, H)  # (B, Hkv, S, Dh) -> (B, H, S, Dh)
        dropout_p = self.dropout if self.training else 0.0
        out, weights = attend(q, k, v, mask, dropout_p, need_weights)  # (B, H, T, Dh)
        out = out.transpose(1, 2).reshape(B, T, D)  # (B, H, T, Dh) -> (B, T, D)
        return self.out_proj(out), weights

    @classmethod
    def from_mha(
        cls, mha: MultiHeadAttention, num_kv_heads: int | None = None
    ) -> GroupedQueryAttention:
        """Build a GroupedQueryAttention from a ``MultiHeadAttention``'s weights.

        With ``num_kv_heads == num_heads`` (the default) the weights are copied and the outputs
        are equal. With fewer key/value heads, the key and value projections of each group are
        mean-pooled, the conversion of Ainslie et al. (2023, §2.1) before "uptraining".

        Args:
            mha: a ``MultiHeadAttention`` with biases.
            num_kv_heads: key/value heads of the result; defaults to ``mha.num_heads``.

        Returns:
            A new module on ``mha``'s device and dtype, in its training mode.

        Shapes:
            ``k_proj.weight`` ``(D, D)`` -> ``(Hkv * Dh, D)``.

        Introduced in chapter 08 (decoding with a KV cache; MQA and GQA).
        """
        if not isinstance(mha, MultiHeadAttention):
            raise ValueError(f"expected a MultiHeadAttention, got {type(mha).__name__}")
        if mha.q_proj.bias is None:
            raise ValueError("from_mha needs a MultiHeadAttention built with bias=True")
        num_kv_heads = mha.num_heads if num_kv_heads is None else num_kv_heads
        w = mha.q_proj.weight
        new = cls(
            mha.d_model, mha.num_heads, num_kv_heads, mha.dropout, device=w.device, dtype=w.dtype
        )
        H, Hkv, Dh = mha.num_heads, num_kv_heads, mha.head_dim  # heads, kv heads, head width
        G = H // Hkv  # query heads per group

        def pool(t: torch.Tensor) -> torch.Tensor:
            # rows of head h are h*Dh .. (h+1)*Dh-1; heads g*G .. g*G+G-1 form group g
            return t.reshape(Hkv, G, Dh, -1).mean(dim=1).reshape(Hkv * Dh, *t.shape[1:])

        with torch.no_grad():
            for src, dst, pooled in (
                (mha.q_proj, new.q_proj, False),
                (mha.k_proj, new.k_proj, True),
                (mha.v_proj, new.v_proj, True),
                (mha.out_proj, new.out_proj, False),
            ):
                weight, bias = src.weight, src.bias[:, None]  # (D, D), (D, 1)
                if pooled:
                    weight, bias = pool(weight), pool(bias)  # (D, D) -> (Hkv*Dh, D)
                dst.weight.copy_(weight)
                dst.bias.copy_(bias.reshape(-1))
        return new.train(mha.training)
