"""Boolean attention masks. Throughout the package, True = may attend."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._validate import check_bool_mask, check_int

__all__ = [
    "causal_mask",
    "combine_masks",
    "from_additive_mask",
    "from_hf_attention_mask",
    "invert_mask",
    "padding_mask",
    "to_additive_mask",
    "to_hf_attention_mask",
]


def causal_mask(
    T: int, S: int | None = None, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """Build the causal mask that lets each query attend to its own and earlier positions only.

    With ``S = T`` (the default) position ``i`` may attend to ``0..i``: True on and below the
    diagonal. With ``S > T`` keys, the ``T`` queries are the **last** ``T`` positions, as when
    new tokens meet a KV cache: query ``i`` sits at position ``S - T + i`` and may attend to
    keys ``0..S - T + i``. The triangle is aligned to the bottom right of the ``(T, S)``
    matrix, as in FlashAttention >= 2.1 and ``torch.nn.attention.bias.causal_lower_right``.
    Beware: ``F.scaled_dot_product_attention(..., is_causal=True)`` aligns it to the **top
    left** (query ``i`` attends to keys ``0..i``), which for one new query keeps key 0 alone.

    Args:
        T: number of queries.
        S: number of keys, ``>= T``; defaults to ``T``.
        device: where to create the mask; defaults to the CPU.

    Returns:
        A bool tensor, True = may attend.

    Shapes:
        -> ``(T, S)``; broadcasts against scores ``(..., T, S)``.

    Introduced in chapter 02; chapter 03 proves that it hides the future, chapter 08 uses
    ``S > T`` with the KV cache.
    """
    check_int("T", T)
    S = T if S is None else S
    check_int("S", S)
    if S < T:
        raise ValueError(f"S={S} keys is fewer than T={T} queries; the queries are the last T keys")
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(S - T)  # (T, S)


def padding_mask(lengths: torch.Tensor | Sequence[int], max_len: int | None = None) -> torch.Tensor:
    """Build the mask that marks the real (non-pad) tokens of right-padded sequences.

    Args:
        lengths: the number of real tokens of each sequence (ints >= 0).
        max_len: the padded length; defaults to the longest of ``lengths``.

    Returns:
        A bool tensor, True for real tokens and False for padding, on ``lengths``' device.
        Use ``m[:, None, :]`` to mask keys in scores ``(B, T, S)`` and ``m[:, None, None, :]``
        for scores with a head dim ``(B, H, T, S)``.

    Shapes:
        lengths ``(B,)`` -> ``(B, max_len)``.

    Introduced in chapter 02; chapter 03 proves that pad tokens then change nothing.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.numel() == 0:
        raise ValueError(
            f"lengths must be a non-empty 1-D sequence, got shape {tuple(lengths.shape)}"
        )
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.is_complex():
        raise ValueError(f"lengths must be integers, got dtype {lengths.dtype}")
    if (lengths < 0).any():
        raise ValueError(f"lengths must be >= 0, got {lengths.tolist()}")
    longest = int(lengths.max())
    if max_len is None:
        max_len = longest
    check_int("max_len", max_len, minimum=None)
    if max_len < longest:
        raise ValueError(f"max_len={max_len!r} is shorter than the longest length {longest}")
    positions = torch.arange(max_len, device=lengths.device)  # (max_len,)
    return positions[None, :] < lengths[:, None]  # (1, max_len) < (B, 1) -> (B, max_len)


def invert_mask(mask: torch.Tensor) -> torch.Tensor:
    """Flip a bool mask between True = may attend (ours) and True = ignore (torch's MHA).

    Ours and ``F.scaled_dot_product_attention`` mean True = may attend; the ``attn_mask`` and
    ``key_padding_mask`` of ``nn.MultiheadAttention`` (and ``nn.Transformer*``) mean True =
    ignore. The conversion is its own inverse, so the same call converts back.

    Args:
        mask: a bool mask in either convention.

    Returns:
        ``~mask``, a new bool tensor.

    Shapes:
        ``(...)`` -> ``(...)``; e.g. causal ``(T, S)`` -> ``attn_mask``, padding ``(B, S)`` ->
        ``key_padding_mask``.

    Introduced in chapter 03 (the mask-convention atlas).
    """
    return ~check_bool_mask("mask", mask)


def to_additive_mask(
    mask: torch.Tensor, dtype: torch.dtype = torch.float32, *, fill: float = float("-inf")
) -> torch.Tensor:
    """Turn a True = may attend mask into a float mask that is added to the scores.

    An additive mask is 0 where a query may attend and ``fill`` where it may not; adding it to
    the scores before the softmax gives the masked keys weight ``exp(fill) = 0``. Pass it as a
    float ``attn_mask`` to ``nn.MultiheadAttention`` or ``F.scaled_dot_product_attention``
    (with the query's dtype). A finite ``fill`` such as ``-1e9`` avoids NaN in fully masked
    rows, but such a row then gets finite weights over the keys it should ignore: uniform in
    float32, where ``-1e9 + s`` rounds to ``-1e9`` for ordinary scores, and the softmax of the
    raw scores in float64, where it does not; either way wrong. And ``-1e4`` leaks weight to
    the masked keys once score gaps reach ~1e4, in any dtype.

    Args:
        mask: bool, True = may attend.
        dtype: floating dtype of the result.
        fill: the (negative) value for disallowed pairs; ``-inf`` by default.

    Returns:
        A float tensor: 0.0 where ``mask`` is True, ``fill`` where it is False.

    Shapes:
        ``(...)`` -> ``(...)``.

    Introduced in chapter 03 (the mask-convention atlas).
    """
    check_bool_mask("mask", mask)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    if not fill < 0:
        raise ValueError(f"fill must be negative (it is added to masked scores), got {fill}")
    if fill != float("-inf") and fill < torch.finfo(dtype).min:
        raise ValueError(
            f"fill={fill} is below the smallest {dtype} value {torch.finfo(dtype).min:.4g}; "
            "use -inf or a fill that the dtype can hold"
        )
    zeros = torch.zeros(mask.shape, dtype=dtype, device=mask.device)  # (...)
    return zeros.masked_fill(~mask, fill)


def from_additive_mask(mask: torch.Tensor) -> torch.Tensor:
    """Turn an additive float mask (0 = keep, negative = ignore) into a True = may attend mask.

    Args:
        mask: float tensor of 0.0 (may attend) and negative values such as ``-inf`` or ``-1e9``.

    Returns:
        A bool tensor, True where ``mask == 0``.

    Shapes:
        ``(...)`` -> ``(...)``.

    Introduced in chapter 03 (the mask-convention atlas).
    """
    if not isinstance(mask, torch.Tensor) or not mask.is_floating_point():
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"an additive mask must be a float tensor, got {got}")
    if mask.isnan().any() or (mask > 0).any():
        raise ValueError(
            f"an additive mask holds 0 (may attend) and negative values (ignore), got values in "
            f"[{mask.min().item()}, {mask.max().item()}]"
        )
    return mask == 0


def from_hf_attention_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Turn a Hugging Face ``attention_mask`` (1 = real token, 0 = padding) into a bool mask.

    Hugging Face tokenizers return an integer ``attention_mask`` over the keys: 1 = keep, the
    same meaning as ours. Broadcast the result with ``m[:, None, None, :]`` for ``(B, H, T, S)``.

    Args:
        attention_mask: an integer, float or bool tensor of 0s and 1s.

    Returns:
        A bool tensor, True = may attend (a real token).

    Shapes:
        ``(B, S)`` -> ``(B, S)``.

    Introduced in chapter 03 (the mask-convention atlas).
    """
    if not isinstance(attention_mask, torch.Tensor) or attention_mask.is_complex():
        got = (
            attention_mask.dtype
            if isinstance(attention_mask, torch.Tensor)
            else type(attention_mask).__name__
        )
        raise ValueError(f"attention_mask must be a real tensor of 0s and 1s, got {got}")
    if attention_mask.dim() != 2:
        raise ValueError(
            f"attention_mask must have shape (B, S), got {tuple(attention_mask.shape)}"
        )
    if not ((attention_mask == 0) | (attention_mask == 1)).all():
        values = attention_mask.unique()[:6].tolist()
        raise ValueError(f"attention_mask must hold only 0s and 1s, got values {values}")
    return attention_mask == 1


def to_hf_attention_mask(mask: torch.Tensor) -> torch.Tensor:
    """Turn a bool key mask (True = real token) into a Hugging Face ``attention_mask``.

    Args:
        mask: bool, True = may attend.

    Returns:
        A ``torch.long`` tensor, 1 = keep, 0 = padding.

    Shapes:
        ``(B, S)`` -> ``(B, S)``.

    Introduced in chapter 03 (the mask-convention atlas).
    """
    if check_bool_mask("mask", mask).dim() != 2:
        raise ValueError(f"mask must have shape (B, S), got {tuple(mask.shape)}")
    return mask.long()


def combine_masks(
    *masks: torch.Tensor, key_padding: torch.Tensor | None = None, head_dim: bool = True
) -> torch.Tensor:
    """Combine True = may attend masks into one: a pair may attend only if every mask allows it.

    Positional masks broadcast as they are (so give them aligned shapes). ``key_padding`` is
    the usual ``(B, S)`` padding mask; it is reshaped first to ``(B, 1, 1, S)`` (or
    ``(B, 1, S)`` with ``head_dim=False``), because broadcasting ``(B, S)`` directly against a
    causal ``(T, S)`` mask would wrongly pair batch items with query positions.

    Args:
        *masks: bool masks, True = may attend, e.g. ``causal_mask(T)``.
        key_padding: optional bool ``(B, S)``, True = real token, e.g. ``padding_mask(lengths)``.
        head_dim: whether ``key_padding`` gets a head dim, giving ``(B, 1, T, S)`` results.

    Returns:
        The logical AND of all masks, broadcast to a common shape.

    Shapes:
        causal ``(T, S)`` with key_padding ``(B, S)`` -> ``(B, 1, T, S)``, or ``(B, T, S)``
        with ``head_dim=False``.

    Introduced in chapter 03 (padding and causal masks together).
    """
    masks = tuple(check_bool_mask(f"mask {i}", m) for i, m in enumerate(masks))
    if key_padding is not None:
        if check_bool_mask("key_padding", key_padding).dim() != 2:
            raise ValueError(f"key_padding must have shape (B, S), got {tuple(key_padding.shape)}")
        if head_dim:
            key_padding = key_padding[:, None, None, :]  # (B, S) -> (B, 1, 1, S)
        else:
            key_padding = key_padding[:, None, :]  # (B, S) -> (B, 1, S)
        masks = (*masks, key_padding)
    if not masks:
        raise ValueError("combine_masks needs at least one mask")
    try:
        shape = torch.broadcast_shapes(*(m.shape for m in masks))
    except RuntimeError:
        shapes = [tuple(m.shape) for m in masks]
        raise ValueError(f"masks of shapes {shapes} do not broadcast together") from None
    if len({m.device for m in masks}) > 1:
        raise ValueError(f"masks are on different devices: {[str(m.device) for m in masks]}")
    out = torch.ones(shape, dtype=torch.bool, device=masks[0].device)
    for m in masks:
        out = out & m  # broadcast -> shape
    return out
