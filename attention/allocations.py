"""Record the tensors a computation creates, to prove what it never holds (a T x S matrix).

A ``TorchDispatchMode`` sees every ATen operator that runs while it is active, forward and
backward, on any device, and the tensors each one returns. A returned tensor whose storage is
not one of the operator's inputs (a view, an ``out=`` buffer, an in-place result) is a new
allocation. The record is exact and deterministic, unlike a peak-memory reading, so a notebook
or a checker can assert on it. What it cannot see: scratch memory that a fused kernel
allocates inside one operator (PyTorch's fused attention, for instance) and never returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = ["AllocationRecorder", "TensorAllocation", "largest_allocation"]


class TensorAllocation(NamedTuple):
    """One tensor created by an operator.

    Attributes:
        nbytes: bytes of its storage.
        shape: its shape.
        dtype: its dtype.
        op: the ATen operator that created it, for example ``aten.bmm.default``.

    Introduced in chapter 04 (the bytes of the fused path); used in chapter 11.
    """

    nbytes: int
    shape: tuple[int, ...]
    dtype: torch.dtype
    op: str


def _storage_key(t: torch.Tensor) -> tuple[str, int] | None:
    try:
        storage = t.untyped_storage()
    except (NotImplementedError, RuntimeError):  # tensor subclasses without a storage
        return None
    return (str(t.device), storage.data_ptr())


class AllocationRecorder(TorchDispatchMode):
    """Record every new tensor that ATen operators create inside a ``with`` block.

    Use it as ``with AllocationRecorder() as rec: ...``, then read ``rec.allocations`` or
    ``rec.largest()``. Backward passes run inside the block are recorded too.

    Introduced in chapter 04 (the bytes of the fused path); used in chapter 11.
    """

    def __init__(self) -> None:
        super().__init__()
        self.allocations: list[TensorAllocation] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = {
            _storage_key(t) for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)
        }
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            key = _storage_key(t)
            if key is None or key in inputs or key[1] == 0:  # a view, out=, in place, or empty
                continue
            inputs.add(key)  # an op returning two views of one new storage counts it once
            nbytes = t.untyped_storage().nbytes()
            self.allocations.append(TensorAllocation(nbytes, tuple(t.shape), t.dtype, str(func)))
        return out

    def largest(self) -> TensorAllocation | None:
        """Return the largest allocation recorded, or None if there was none.

        Returns:
            The ``TensorAllocation`` with the most bytes (the first of equals).

        Shapes:
            (none)

        Introduced in chapter 11 (FlashAttention from scratch).
        """
        return max(self.allocations, key=lambda a: a.nbytes, default=None)


def largest_allocation(fn: Callable, *args, **kwargs) -> TensorAllocation | None:
    """Run ``fn(*args, **kwargs)`` once and return the largest tensor its operators created.

    Args:
        fn: the callable to run (call ``.backward()`` inside it to include the backward pass).
        *args: its positional arguments.
        **kwargs: its keyword arguments.

    Returns:
        The largest ``TensorAllocation`` (bytes, shape, dtype, operator), or None.

    Shapes:
        (any)

    Introduced in chapter 11 (FlashAttention from scratch).
    """
    with AllocationRecorder() as recorder:
        fn(*args, **kwargs)
    return recorder.largest()
