"""Grouped-query attention (GQA) and multi-query attention (MQA): fewer key/value heads."""

from __future__ import annotations

import torch

from .multihead import MultiHeadAttention

__all__ = ["GroupedQueryAttention"]


class GroupedQueryAttention(MultiHeadAttention):
    r"""Multi-head attention whose ``H`` query heads share ``Hkv`` key/value heads.

    Query heads are split into ``Hkv`` groups of ``G = H / Hkv``; the heads of a group read the
    same keys and values (Ainslie et al. 2023). ``Hkv = H`` is ordinary multi-head attention,
    ``Hkv = 1`` is multi-query attention (Shazeer 2019). Only ``k_proj`` and ``v_proj`` shrink,
    to ``D -> Hkv * Dh``, so the KV cache of a decoder shrinks by the factor ``G``. This class
    is ``MultiHeadAttention`` with ``num_kv_heads`` as its third argument; ``forward`` (with
    or without a cache) is the same.

    Args:
        d_model: model width ``D``; must be divisible by ``num_heads``.
        num_heads: number of query heads ``H``.
        num_kv_heads: number of key/value heads ``Hkv``; must divide ``num_heads``.
        *args: ``dropout=0.0, bias=True``, as for ``MultiHeadAttention``.
        **kwargs: ``device``, ``dtype``, as for ``MultiHeadAttention``.

    Shapes:
        query ``(B, T, D)``, key and value ``(B, S, D)`` -> out ``(B, T, D)``,
        weights ``(B, H, T, S)``.

    Introduced in chapter 08 (decoding with a KV cache; MQA and GQA).
    """

    def __init__(self, d_model: int, num_heads: int, num_kv_heads: int, *args, **kwargs) -> None:
        super().__init__(d_model, num_heads, *args, num_kv_heads=num_kv_heads, **kwargs)

    @classmethod
    def from_mha(
        cls, mha: MultiHeadAttention, num_kv_heads: int | None = None
    ) -> GroupedQueryAttention:
        """Build a GroupedQueryAttention from a ``MultiHeadAttention``'s weights.

        With ``num_kv_heads == num_heads`` (the default) the weights are copied and the outputs
        are equal. With fewer key/value heads, the key and value projections of each group are
        mean-pooled, the conversion of Ainslie et al. (2023, §2.1) before "uptraining".

        Args:
            mha: a ``MultiHeadAttention`` with biases and ``num_kv_heads == num_heads``.
            num_kv_heads: key/value heads of the result; defaults to ``mha.num_heads``.

        Returns:
            A new module on ``mha``'s device and dtype, in its training mode.

        Shapes:
            ``k_proj.weight`` ``(D, D)`` -> ``(Hkv * Dh, D)``.

        Introduced in chapter 08 (decoding with a KV cache; MQA and GQA).
        """
        if not isinstance(mha, MultiHeadAttention):
            raise ValueError(f"expected a MultiHeadAttention, got {type(mha).__name__}")
        if mha.num_kv_heads != mha.num_heads:
            raise ValueError(f"from_mha needs num_kv_heads == num_heads, got {mha.num_kv_heads}")
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
