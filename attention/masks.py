"""Boolean attention masks. Throughout the package, True = may attend."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["causal_mask", "padding_mask"]


def causal_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Build the causal mask that lets position i attend to positions 0..i only.

    Args:
        T: sequence length (queries and keys).
        device: where to create the mask; defaults to the CPU.

    Returns:
        A bool tensor, True on and below the diagonal (True = may attend).

    Shapes:
        -> ``(T, T)``; broadcasts against scores ``(..., T, T)``.

    Introduced in chapter 02; chapter 03 proves that it hides the future.
    """
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}")
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def padding_mask(
    lengths: torch.Tensor | Sequence[int], max_len: int | None = None
) -> torch.Tensor:
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
        raise ValueError(f"lengths must be a non-empty 1-D sequence, got shape {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.is_complex():
        raise ValueError(f"lengths must be integers, got dtype {lengths.dtype}")
    if (lengths < 0).any():
        raise ValueError(f"lengths must be >= 0, got {lengths.tolist()}")
    longest = int(lengths.max())
    if max_len is None:
        max_len = longest
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < longest:
        raise ValueError(f"max_len={max_len!r} is shorter than the longest length {longest}")
    positions = torch.arange(max_len, device=lengths.device)  # (max_len,)
    return positions[None, :] < lengths[:, None]  # (1, max_len) < (B, 1) -> (B, max_len)
