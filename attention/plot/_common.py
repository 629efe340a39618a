"""Helpers shared by the plotting modules."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _to_numpy(weights: torch.Tensor, name: str = "weights"):
    """Return a float NumPy copy of a tensor on any device, with or without gradients."""
    if not isinstance(weights, torch.Tensor):
        weights = torch.as_tensor(weights)
    if weights.is_complex() or weights.dtype == torch.bool:
        raise ValueError(f"{name} must be real numbers, got dtype {weights.dtype}")
    return weights.detach().to("cpu", torch.float32).numpy()


def _check_labels(labels: Sequence[str] | None, n: int, name: str) -> None:
    if labels is not None and len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} labels but the map has {n} {name[0]}-positions")
