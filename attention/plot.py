"""Figures of the course: attention maps and simple labelled curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["plot_attention", "plot_curves", "show_heatmaps"]


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


def plot_attention(
    weights: torch.Tensor,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    *,
    xlabel: str = "key position (attended to)",
    ylabel: str = "query position (attending)",
    cmap: str = "viridis",
    colorbar: bool = True,
    annotate: bool = False,
) -> Axes:
    """Draw one attention map: a row per query, a column per key, with a colour bar.

    Args:
        weights: the attention weights (any device, gradients allowed).
        x_labels: one label per key (column), e.g. the tokens.
        y_labels: one label per query (row).
        ax: the Axes to draw on; a new figure is made when None.
        title: the title of the map.
        xlabel, ylabel: axis labels.
        cmap: a matplotlib colour map name.
        colorbar: whether to add a colour bar.
        annotate: write each weight (two decimals) in its cell; for small maps.

    Returns:
        The Axes drawn on.

    Shapes:
        weights ``(T, S)``; leading dims of size 1 are squeezed.

    Introduced in chapter 02.
    """
    w = _to_numpy(weights)
    shape = tuple(w.shape)
    while w.ndim > 2 and w.shape[0] == 1:
        w = w[0]
    if w.ndim != 2:
        raise ValueError(
            f"plot_attention draws one (T, S) map, got shape {shape}; "
            "use show_heatmaps for a grid of maps"
        )
    T, S = w.shape  # queries, keys
    _check_labels(x_labels, S, "x_labels")
    _check_labels(y_labels, T, "y_labels")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * S + 2.5, 0.45 * T + 1.5))
    image = ax.imshow(w, cmap=cmap, vmin=0.0, vmax=max(float(w.max()), 1e-12), aspect="auto")
    if x_labels is not None:
        ax.set_xticks(range(S), list(x_labels), rotation=60, ha="right")
    if y_labels is not None:
        ax.set_yticks(range(T), list(y_labels))
    if annotate:
        for i in range(T):
            for j in range(S):
                colour = "black" if w[i, j] > 0.6 * w.max() else "white"
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", color=colour, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="weight")
    return ax


def show_heatmaps(
    weights: torch.Tensor,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    *,
    row_titles: Sequence[str] | None = None,
    col_titles: Sequence[str] | None = None,
    title: str | None = None,
    xlabel: str = "key",
    ylabel: str = "query",
    cmap: str = "viridis",
    cell_size: float = 2.2,
) -> Figure:
    """Draw a grid of attention maps (for example layers x heads) sharing one colour bar.

    Args:
        weights: the maps (any device, gradients allowed).
        x_labels, y_labels: token labels for keys and queries, shared by every map.
        row_titles: one title per row (e.g. ``["layer 1", "layer 2"]``).
        col_titles: one title per column (e.g. ``["head 1", ...]``).
        title: the title of the whole figure.
        xlabel, ylabel: axis labels of the bottom row and the left column.
        cmap: a matplotlib colour map name.
        cell_size: the size in inches of each map.

    Returns:
        The Figure.

    Shapes:
        weights ``(rows, cols, T, S)``; ``(cols, T, S)`` is one row and ``(T, S)`` one map.

    Introduced in chapter 02; used for per-head maps from chapter 04 on.
    """
    w = _to_numpy(weights)
    if not 2 <= w.ndim <= 4:
        raise ValueError(f"show_heatmaps expects (rows, cols, T, S), got shape {tuple(w.shape)}")
    while w.ndim < 4:
        w = w[None]
    rows, cols, T, S = w.shape
    _check_labels(x_labels, S, "x_labels")
    _check_labels(y_labels, T, "y_labels")
    _check_labels(row_titles, rows, "row_titles")
    _check_labels(col_titles, cols, "col_titles")
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(cell_size * cols + 1.2, cell_size * rows + 0.6),
        squeeze=False,
        sharex=True,
        sharey=True,
        layout="constrained",
    )
    vmax = max(float(w.max()), 1e-12)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            image = ax.imshow(w[r, c], cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
            if col_titles is not None and r == 0:
                ax.set_title(col_titles[c], fontsize=10)
            if r == rows - 1:
                ax.set_xlabel(xlabel)
                if x_labels is not None:
                    ax.set_xticks(range(S), list(x_labels), rotation=60, ha="right", fontsize=8)
            if c == 0:
                label = ylabel if row_titles is None else f"{row_titles[r]}\n{ylabel}"
                ax.set_ylabel(label)
                if y_labels is not None:
                    ax.set_yticks(range(T), list(y_labels), fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight")
    if title:
        fig.suptitle(title)
    return fig


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
