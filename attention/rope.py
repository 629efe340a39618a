"""Rotary position embeddings (RoPE, Su et al.): both feature layouts (chapter 05)."""

from __future__ import annotations

import torch

__all__ = ["apply_rope"]


def apply_rope(
    x: torch.Tensor,
    positions: torch.Tensor | None = None,
    base: float = 10000.0,
    *,
    interleaved: bool = True,
) -> torch.Tensor:
    """Rotate each pair of features by an angle proportional to the position (RoPE).

    The feature pair ``i`` of the token at position ``m`` is rotated by ``m·θ_i``, with
    ``θ_i = base^(-2i/D)``, ``i = 0 .. D/2 - 1`` (Su et al., RoFormer). Apply it to queries and
    keys, not values: ``<rope(q, m), rope(k, n)>`` then depends on ``m - n`` only; position 0
    is the identity and norms are preserved. Angles are computed in float64 for float64 inputs.

    Two layouts, equal up to a fixed permutation of the features (chapter 05 proves it); a
    model's weights work only with the one it was trained with. ``interleaved=True`` pairs
    neighbours ``(x[2i], x[2i+1])``, as RoFormer, GPT-J and Meta's LLaMA code do;
    ``interleaved=False`` pairs the halves ``(x[i], x[i + D/2])``, as GPT-NeoX and Hugging
    Face's LLaMA do (``x * cos + rotate_half(x) * sin``).

    Args:
        x: queries or keys, features in the last dim (even).
        positions: the position of each token; defaults to ``0 .. T-1``. Its shape must
            broadcast to ``x.shape[:-1]``: Hugging Face's ``position_ids`` of shape ``(B, T)``
            go with ``x`` of shape ``(B, H, T, D)`` as ``positions[:, None, :]``.
        base: the constant 10000 of the paper.
        interleaved: which features form a pair (see above).

    Returns:
        The rotated tensor.

    Shapes:
        x ``(..., T, D)``, positions ``(T,)`` or broadcastable to ``(..., T)`` -> ``(..., T, D)``.

    Introduced in chapter 05 (position information).
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or not x.is_floating_point():
        got = (
            f"shape {tuple(x.shape)}, {x.dtype}"
            if isinstance(x, torch.Tensor)
            else type(x).__name__
        )
        raise ValueError(f"x must be a floating-point tensor (..., T, D), got {got}")
    T, D = x.shape[-2:]  # tokens, features
    if D % 2:
        raise ValueError(
            f"the last dim D={D} of x {tuple(x.shape)} must be even: RoPE rotates pairs"
        )
    if positions is None:
        positions = torch.arange(T, device=x.device)  # (T,)
    elif not isinstance(positions, torch.Tensor) or not _broadcasts_to(positions, x.shape[:-1]):
        is_tensor = isinstance(positions, torch.Tensor)
        got = f"of shape {tuple(positions.shape)}" if is_tensor else type(positions).__name__
        raise ValueError(
            f"positions {got} do not broadcast to the leading dims {tuple(x.shape[:-1])} "
            f"of x {tuple(x.shape)}; for x (B, H, T, D) and position_ids (B, T), pass "
            "positions[:, None, :]"
        )
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    theta = base ** -(torch.arange(0, D, 2, device=x.device, dtype=work) / D)  # (D/2,)
    angle = positions.to(x.device, work)[..., None] * theta  # (..., T, 1) * (D/2,) -> (..., T, D/2)
    # (..., T, D) -> (..., T, D/2, 2): the pairs (x[2i], x[2i+1]), or (x[i], x[i + D/2])
    pairs = x.unflatten(-1, (D // 2, 2)) if interleaved else x.unflatten(-1, (2, D // 2)).mT
    if x.dtype in (torch.float32, torch.float64) and x.device.type in ("cpu", "cuda"):
        # a pair is a complex number, the rotation a product with e^(i angle): one fused op
        z = torch.view_as_complex(pairs.contiguous())  # (..., T, D/2), complex
        rotated = torch.view_as_real(z * torch.polar(torch.ones_like(angle), angle))
    else:  # half precision or other devices: the same rotation in real arithmetic
        cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
        x1, x2 = pairs.unbind(-1)  # (..., T, D/2) each
        rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return rotated.flatten(-2) if interleaved else rotated.mT.flatten(-2)  # (..., T, D)


def _broadcasts_to(positions: torch.Tensor, target: torch.Size) -> bool:
    """Whether ``positions`` broadcasts to the shape ``target`` without growing it."""
    shape = positions.shape
    return len(shape) <= len(target) and all(
        s in (1, t) for s, t in zip(reversed(shape), reversed(target), strict=False)
    )
