"""Labelled curves against a shared x axis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes

from ._common import _to_numpy


def plot_curves(
    x: Sequence[float] | torch.Tensor,
    curves: Mapping[str, Sequence[float] | torch.Tensor],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    ax: Axes | None = None,
    logx: bool = False,
    logy: bool = False,
    markers: bool = True,
    dashed: Sequence[str] = (),
) -> Axes:
    """Plot one or more named curves against a shared x axis, with a legend.

    Args:
        x: the x values.
        curves: a mapping from legend label to y values (same length as ``x``).
        xlabel, ylabel, title: required, so no figure leaves the course unlabelled.
        ax: the Axes to draw on; a new figure is made when None.
        logx, logy: logarithmic axes.
        markers: draw a marker on each point.
        dashed: labels of curves to draw as dashed lines without markers (e.g. a theory line).

    Returns:
        The Axes drawn on.

    Shapes:
        x ``(N,)``, each curve ``(N,)``.

    Introduced in chapter 02 (variance of q.k, softmax saturation).
    """
    xs = _to_numpy(torch.as_tensor(x), "x")
    if xs.ndim != 1 or not curves:
        raise ValueError(
            f"x must be 1-D and curves non-empty, got x {xs.shape}, {len(curves)} curves"
        )
    unknown = set(dashed) - set(curves)
    if unknown:
        raise ValueError(f"dashed names curves that do not exist: {sorted(unknown)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for label, y in curves.items():
        ys = _to_numpy(torch.as_tensor(y), label)
        if ys.shape != xs.shape:
            raise ValueError(f"curve {label!r} has shape {ys.shape} but x has shape {xs.shape}")
        if label in dashed:
            ax.plot(xs, ys, linestyle="--", color="0.4", label=label)
        else:
            ax.plot(xs, ys, marker="o" if markers else None, label=label)
    if logx:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [f"{value:g}" for value in xs])  # the measured x values, not 2^k
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return ax
