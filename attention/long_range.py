"""Long-range dependencies: maximum path lengths (Table 1 of [V]); the recall-at-distance task is
``attention.data.make_recall_data``.

A left-to-right model of ``n`` tokens has its longest dependency between input 0 and output
``n - 1``. The *path length* of that dependency is the number of layer (or recurrent cell)
applications a signal passes on the shortest route from one to the other: the edges of the
computation graph. Vaswani et al. (2017, §4) argue that the shorter these paths, the easier
long-range dependencies are to learn.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._validate import check_int

__all__ = ["LAYER_TYPES", "max_path_length", "receptive_field"]

# The layer types of Table 1 of [V], by the names max_path_length accepts.
LAYER_TYPES = ("attention", "recurrent", "convolution", "dilated", "restricted")


def receptive_field(kernel_size: int, dilations: Sequence[int]) -> int:
    """Return how many consecutive inputs one output of a stack of 1-D convolutions sees.

    Each layer with kernel ``k`` and dilation ``d`` widens the window by ``(k - 1) * d``, so
    ``L`` contiguous layers (``d = 1``) see ``1 + L (k - 1)`` inputs, and ``L`` layers with
    dilations ``1, k, k^2, ...`` see ``k^L``.

    Args:
        kernel_size: the kernel width ``k`` of every layer (``>= 1``).
        dilations: one dilation per layer (each ``>= 1``); an empty stack sees 1 input.

    Returns:
        The receptive field, in tokens.

    Shapes:
        (ints only)

    Introduced in chapter 10 (long-range dependencies).
    """
    check_int("kernel_size", kernel_size, 1)
    for d in dilations:
        check_int("each dilation", d, 1)
    return 1 + sum((kernel_size - 1) * d for d in dilations)


def max_path_length(layer: str, n: int, k: int | None = None) -> int:
    """Return the maximum path length between two of ``n`` positions for a type of layer.

    Counted in a left-to-right model, from input 0 to output ``n - 1``, as the number of layer
    (or cell) applications on the shortest route, with as many layers stacked as it takes to
    connect the two ([V] §4, Table 1):

    - ``"attention"``: 1, one layer connects every pair (``O(1)``);
    - ``"recurrent"``: ``n``, the signal enters the cell at step 0 and passes it ``n`` times
      before it leaves at step ``n - 1`` (``O(n)``);
    - ``"convolution"`` (contiguous kernels of width ``k``): each layer reaches ``k - 1``
      positions further back, so ``ceil((n - 1) / (k - 1))`` layers (``O(n / k)``);
    - ``"dilated"`` (kernel ``k``, dilation ``k^l`` in layer ``l``): ``L`` layers see ``k^L``
      positions, so the smallest ``L`` with ``k^L >= n`` (``O(log_k n)``);
    - ``"restricted"`` (self-attention over the ``r = k`` most recent positions, the query
      included): each layer reaches ``r - 1`` back, ``ceil((n - 1) / (r - 1))`` (``O(n / r)``).

    Args:
        layer: one of ``LAYER_TYPES``.
        n: sequence length (``>= 2``: a dependency needs two positions).
        k: kernel width (or window ``r`` for ``"restricted"``), ``>= 2``; needed only for the
            last three layer types.

    Returns:
        The path length, a positive int. Computed with integers only (no float logarithm).

    Shapes:
        (ints only)

    Introduced in chapter 10 (long-range dependencies).
    """
    if layer not in LAYER_TYPES:
        raise ValueError(f"layer must be one of {LAYER_TYPES}, got {layer!r}")
    check_int("n", n, 2)
    if layer == "attention":
        return 1
    if layer == "recurrent":
        return n
    if k is None:
        raise ValueError(f"layer={layer!r} needs the kernel width (or window) k")
    check_int("k", k, 2)
    if layer == "dilated":
        layers, seen = 0, 1
        while seen < n:  # one more layer multiplies the receptive field by k
            layers, seen = layers + 1, seen * k
        return layers
    return -(-(n - 1) // (k - 1))  # ceiling division: a partly used layer is still a layer
