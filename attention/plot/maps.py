"""Attention maps: one map, or a grid of layers x heads."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._common import _check_labels, _to_numpy


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
    vmax: float | None = None,
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
        vmax: the weight drawn in the top colour. None (the default) uses this map's largest
            weight; pass the same value (e.g. 1.0) to maps that are compared side by side, so
            that one colour means one weight in all of them.

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
    if vmax is not None and not vmax > 0:
        raise ValueError(f"vmax must be positive (the colour scale starts at 0), got {vmax}")
    top = max(float(w.max()), 1e-12) if vmax is None else float(vmax)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * S + 2.5, 0.45 * T + 1.5))
    image = ax.imshow(w, cmap=cmap, vmin=0.0, vmax=top, aspect="auto")
    if x_labels is not None:
        ax.set_xticks(range(S), list(x_labels), rotation=60, ha="right")
    if y_labels is not None:
        ax.set_yticks(range(T), list(y_labels))
    if annotate:
        for i in range(T):
            for j in range(S):
                colour = "black" if w[i, j] > 0.6 * top else "white"
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
    vmin: float = 0.0,
    vmax: float | None = None,
    colorbar_label: str = "weight",
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
        vmin, vmax: the values drawn in the bottom and top colours, shared by every map. The
            defaults suit weights: 0 and the largest value. Pass both to draw other values,
            e.g. a negative bias; NaN entries are left blank.
        colorbar_label: the label of the shared colour bar.

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
    vmax = max(float(w.max()), 1e-12) if vmax is None else float(vmax)
    if not vmax > vmin:
        raise ValueError(f"vmax must be above vmin, got vmin={vmin}, vmax={vmax}")
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            image = ax.imshow(w[r, c], cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
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
    fig.colorbar(image, ax=axes, shrink=0.8, label=colorbar_label)
    if title:
        fig.suptitle(title)
    return fig
