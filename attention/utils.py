"""Reproducibility, device selection and error demonstrations shared by every notebook."""

from __future__ import annotations

import contextlib
import os
import random
import re
from collections.abc import Iterator

import torch

from ._validate import check_int

__all__ = ["expect_error", "get_device", "set_seed"]

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

    Introduced in chapter 02 (the setup cell of every chapter).
    """
    check_int("seed", seed, minimum=0)
    random.seed(seed)
    try:
        import numpy as np
    except ImportError:  # NumPy is optional for the package itself
        pass
    else:
        np.random.seed(seed)
    torch.manual_seed(seed)  # seeds the CPU and every CUDA/MPS device


@contextlib.contextmanager
def expect_error(
    exc_type: type[BaseException] | tuple[type[BaseException], ...], match: str | None = None
) -> Iterator[None]:
    """Demonstrate an error: the block must raise ``exc_type``, which is shown in one line.

    When the block raises ``exc_type`` (and its message matches the regular expression
    ``match``, searched as ``re.search`` does, if given), prints ``ExcName: message`` (the
    message's first line) and carries on with the notebook. An error demonstration must
    fail when the error stops happening: if nothing is raised, it raises ``AssertionError``;
    another exception type propagates unchanged, and a non-matching message fails with an
    ``AssertionError`` that quotes it.

    Args:
        exc_type: the expected exception class (or a tuple of classes).
        match: a regular expression the message must contain.

    Example::

        with attention.expect_error(ValueError, match="must be a bool tensor"):
            attention.scaled_dot_product_attention(q, k, v, mask.int())

    Introduced in chapter 02 (the first error demonstration).
    """
    names = (
        exc_type.__name__ if isinstance(exc_type, type) else "/".join(t.__name__ for t in exc_type)
    )
    wanted = names + ("" if match is None else f" matching {match!r}")
    try:
        yield
    except exc_type as err:
        message = str(err)
        first = message.strip().splitlines()[0] if message.strip() else ""
        if match is not None and not re.search(match, message):
            raise AssertionError(
                f"expected {wanted}, but got {type(err).__name__}: {first}"
            ) from err
        print(f"{type(err).__name__}: {first}" if first else type(err).__name__)
    else:
        raise AssertionError(f"expected {wanted}, but nothing was raised")
