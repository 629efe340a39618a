"""Reproducibility and device selection shared by every notebook."""

from __future__ import annotations

import os
import random

import torch

__all__ = ["get_device", "set_seed"]

DEVICE_ENV_VAR = "ATTENTION_DEVICE"


def get_device(*, float64: bool = False) -> torch.device:
    """Pick the fastest available device: CUDA, then Apple's MPS, then the CPU.

    The environment variable ``ATTENTION_DEVICE`` (for example ``cpu`` or ``cuda:1``)
    overrides the choice, so a notebook can be forced onto the CPU without editing it.

    Args:
        float64: the device must support float64. MPS does not, so the CPU is returned
            instead of MPS; the notebooks' float64 proofs use ``get_device(float64=True)``.

    Returns:
        The chosen ``torch.device``.

    Shapes:
        (none)

    Introduced in chapter 02 (the setup cell of every chapter).
    """
    override = os.environ.get(DEVICE_ENV_VAR, "").strip()
    if override:
        try:
            device = torch.device(override)
        except RuntimeError as err:
            raise ValueError(f"{DEVICE_ENV_VAR}={override!r} is not a device name: {err}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{DEVICE_ENV_VAR}={override!r} but CUDA is not available here")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"{DEVICE_ENV_VAR}={override!r} but MPS is not available here")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if float64 and device.type == "mps":
        return torch.device("cpu")  # MPS has no float64
    return device


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's (if installed) and PyTorch's generators on every device.

    Args:
        seed: a non-negative int.

    Shapes:
        (none)

    Introduced in chapter 02 (the setup cell of every chapter).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    try:
        import numpy as np
    except ImportError:  # NumPy is optional for the package itself
        pass
    else:
        np.random.seed(seed)
    torch.manual_seed(seed)  # seeds the CPU and every CUDA/MPS device
