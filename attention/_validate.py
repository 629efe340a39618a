"""Input checks shared by the package's public functions and modules.

Every public entry point validates its inputs once, with these helpers, and raises a
``ValueError`` that names the problem and the values; inner paths (the layers of a stack, each
step of a decoding loop) call private, unchecked methods instead of checking again.
A new module imports what it needs::

    from ._validate import check_int, check_probability

    check_int("num_heads", num_heads)  # "num_heads must be a positive int, got 0"
    check_probability("dropout", dropout)  # "dropout must be in [0, 1), got 1.5"
"""

from __future__ import annotations

import torch


def check_int(name: str, value: object, minimum: int | None = 1) -> None:
    """Raise unless ``value`` is an int (not a bool) ``>= minimum``; any int if it is None."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not is_int or (minimum is not None and value < minimum):
        want = {None: "an int", 0: "a non-negative int", 1: "a positive int"}
        raise ValueError(
            f"{name} must be {want.get(minimum, f'an int >= {minimum}')}, got {value!r}"
        )


def check_probability(name: str, value: object) -> None:
    """Raise unless ``value`` is a probability in ``[0, 1)``, such as a dropout rate."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


def _type_name(x: object) -> str:
    return str(x.dtype) if isinstance(x, torch.Tensor) else type(x).__name__


def check_bool_mask(name: str, mask: object, meaning: str = "", hint: str = "") -> torch.Tensor:
    """Return ``mask`` if it is a bool tensor; otherwise raise naming its dtype or type.

    ``meaning`` is shown in brackets (``"True = may attend"``), ``hint`` after a semicolon.
    """
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        meaning = f" ({meaning})" if meaning else ""
        hint = f"; {hint}" if hint else ""
        raise ValueError(f"{name} must be a bool tensor{meaning}, got {_type_name(mask)}{hint}")
    return mask


def check_mask_shape(mask: torch.Tensor, shape: tuple[int, ...], what: str) -> None:
    """Raise unless ``mask`` broadcasts to exactly ``shape`` (described by ``what``)."""
    try:
        ok = tuple(torch.broadcast_shapes(mask.shape, shape)) == tuple(shape)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to {what}")


def check_sdpa_inputs(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> None:
    """Raise naming the shapes when q, k, v and mask cannot be attended together (chapter 02)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(
                f"{name} must have at least 2 dims (..., length, width), got shape {tuple(t.shape)}"
            )
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k and v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(
            f"q, k and v must be on one device, got {q.device}, {k.device}, {v.device}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same last dim Dk: q {tuple(q.shape)} vs k {tuple(k.shape)}"
        )
    batch = check_length_and_batch(q, k, v)
    hint = "convert a 0/1 mask with mask.bool() and an additive mask with mask == 0"
    check_score_mask(mask, batch, q, k, hint=hint)


def check_additive_inputs(tensors: dict[str, torch.Tensor], mask: torch.Tensor | None) -> None:
    """Raise naming the shapes when ``tensors`` (query, key, value, w_q, w_k, v_a, by name)
    and ``mask`` cannot be scored by additive attention together (chapter 01)."""
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    query, key, value, w_q, w_k, v_a = (
        tensors[n] for n in ("query", "key", "value", "w_q", "w_k", "v_a")
    )
    for name in ("query", "key", "value"):
        if tensors[name].dim() < 2:
            shape = tuple(tensors[name].shape)
            raise ValueError(f"{name} must have at least 2 dims (..., length, width), got {shape}")
    dtypes, devices = {t.dtype for t in tensors.values()}, {t.device for t in tensors.values()}
    if len(dtypes) > 1 or len(devices) > 1:
        got = ", ".join(f"{n} {t.dtype} on {t.device}" for n, t in tensors.items())
        raise ValueError(f"all inputs must share one dtype and device, got {got}")
    if w_q.dim() != 2 or w_k.dim() != 2 or v_a.dim() != 1:
        raise ValueError(
            f"w_q and w_k must be matrices (Dh, Dq) and (Dh, Dk), v_a a vector (Dh,), got "
            f"{tuple(w_q.shape)}, {tuple(w_k.shape)} and {tuple(v_a.shape)}"
        )
    if not (w_q.shape[0] == w_k.shape[0] == v_a.shape[0]):
        raise ValueError(
            f"w_q {tuple(w_q.shape)}, w_k {tuple(w_k.shape)} and v_a {tuple(v_a.shape)} must "
            "share the hidden width Dh (their first dim)"
        )
    if query.shape[-1] != w_q.shape[1] or key.shape[-1] != w_k.shape[1]:
        raise ValueError(
            f"query {tuple(query.shape)} needs w_q (Dh, {query.shape[-1]}) and key "
            f"{tuple(key.shape)} needs w_k (Dh, {key.shape[-1]}); got w_q {tuple(w_q.shape)} "
            f"and w_k {tuple(w_k.shape)}"
        )
    batch = check_length_and_batch(query, key, value, names=("query", "key", "value"))
    check_score_mask(mask, batch, query, key, q_name="query")


def check_length_and_batch(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, names: tuple[str, str, str] = ("q", "k", "v")
) -> torch.Size:
    """Raise unless k and v have one length S and the leading dims broadcast; return those dims."""
    qn, kn, vn = names
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"{kn} and {vn} must have the same length S (dim -2): "
            f"{kn} {tuple(k.shape)} vs {vn} {tuple(v.shape)}"
        )
    try:
        return torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the leading (batch) dims of {qn} {tuple(q.shape)}, {kn} {tuple(k.shape)} and "
            f"{vn} {tuple(v.shape)} do not broadcast"
        ) from None


def check_score_mask(
    mask: torch.Tensor | None,
    batch: torch.Size,
    q: torch.Tensor,
    k: torch.Tensor,
    *,
    q_name: str = "q",
    hint: str = "",
) -> None:
    """Raise unless ``mask`` is None or a boolean mask that broadcasts to the (..., T, S) scores."""
    if mask is None:
        return
    check_bool_mask("mask", mask, "True = may attend", hint)
    scores = (*batch, q.shape[-2], k.shape[-2])
    check_mask_shape(mask, scores, f"the scores' shape {scores} (..., T, S)")
    if mask.device != q.device:
        raise ValueError(f"mask is on {mask.device} but {q_name} is on {q.device}")


def check_attention_inputs(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None,
    d_model: int,
    num_heads: int,
) -> None:
    """Raise naming the shapes when the inputs do not fit a multi-head layer (chapter 04)."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 3:
            raise ValueError(
                f"{name} must have 3 dims (batch, tokens, d_model), got shape "
                f"{tuple(t.shape)}; add a batch dim with {name}[None] for a single sequence"
            )
        if t.shape[-1] != d_model:
            raise ValueError(
                f"{name} has width {t.shape[-1]} (shape {tuple(t.shape)}) but the layer was "
                f"built with d_model={d_model}"
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
    hint = "see attention.masks for conversions from other conventions"
    check_bool_mask("mask", mask, "True = may attend", hint)
    if mask.dim() == 3 and mask.shape[0] != 1:
        raise ValueError(
            f"a 3-D mask of shape {tuple(mask.shape)} is ambiguous (it would broadcast its "
            "first dim against the heads): use mask[:, None] for (B, 1, T, S)"
        )
    full = (query.shape[0], num_heads, query.shape[1], key.shape[1])  # (B, H, T, S)
    what = f"(B, H, T, S) = {full}"
    if mask.dim() > 4:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to {what}")
    check_mask_shape(mask, full, what)
    if mask.device != query.device:
        raise ValueError(f"mask is on {mask.device} but query is on {query.device}")


def check_token_ids(
    name: str, ids: object, vocab_size: int | None = None, *, long_only: bool = False
) -> None:
    """Raise unless ``ids`` is an integer ``(B, T)`` tensor of ids in ``[0, vocab_size)``.

    The range check is one reduction (one device synchronisation on a GPU): call it at the
    public entry point, not on every step of a loop.
    """
    kinds = (torch.int64,) if long_only else (torch.int32, torch.int64)
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype not in kinds:
        got = f"{ids.dtype} {tuple(ids.shape)}" if isinstance(ids, torch.Tensor) else type(ids)
        kind = "a torch.long" if long_only else "an int"
        raise ValueError(f"{name} must be {kind} tensor (B, T), got {got}")
    if vocab_size is not None and ids.numel() and not ((ids >= 0) & (ids < vocab_size)).all():
        raise ValueError(f"{name} must be in [0, {vocab_size}), got [{ids.min()}, {ids.max()}]")
