"""Attention maps: one map, or a grid of layers x heads."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._common import _check_labels, _to_numpy
from .style import FONT_PT, MAX_COLS, WIDTH, subplots, wrap


def _label_ticks(ax: Axes, axis: str, labels: Sequence[str], length_in: float) -> None:
    """Label every position, or every k-th one when the labels would not fit ``length_in``.

    A label needs about 1.5 font sizes across the axis (y axis, or x labels rotated by 45
    degrees); x labels stay upright when the widest (0.6 em per character) fits its position.
    """
    n = len(labels)
    room = length_in * 72 / n  # points per position
    rotate = False
    if axis == "x":
        widest = max((len(str(label)) for label in labels), default=0) * 0.6 * FONT_PT
        rotate = widest + 0.3 * FONT_PT > room
    step = max(1, math.ceil(1.5 * FONT_PT / room)) if rotate or axis == "y" else 1
    positions = list(range(0, n, step))
    shown = [labels[i] for i in positions]
    if axis == "x":
        ha = "right" if rotate else "center"
        ax.set_xticks(positions, shown, rotation=45 if rotate else 0, ha=ha)
    else:
        ax.set_yticks(positions, shown)


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
        annotate: write each weight (two decimals) in its cell, in the course's smallest font
            (10.5 pt); for small maps.
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
        _, ax = subplots(height=min(0.36 * T + 1.6, 6.0))
    image = ax.imshow(w, cmap=cmap, vmin=0.0, vmax=top, aspect="auto")
    width_in, height_in = _axes_size(ax)
    if y_labels is not None:  # the labels and the colour bar take part of the Axes' width
        width_in -= max(len(str(label)) for label in y_labels) * 0.6 * FONT_PT / 72
    width_in -= 0.8 if colorbar else 0.0
    width_in = max(width_in, 0.5)
    if x_labels is not None:
        _label_ticks(ax, "x", list(x_labels), width_in)
    if y_labels is not None:
        _label_ticks(ax, "y", list(y_labels), height_in)
    if annotate:
        for i in range(T):
            for j in range(S):
                colour = "black" if w[i, j] > 0.6 * top else "white"
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", color=colour)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(wrap(title, width_in + 1.0))
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="weight")
    return ax


def _axes_size(ax: Axes) -> tuple[float, float]:
    """The Axes' size in inches, from its position before the layout engine adjusts it."""
    box = ax.get_position()
    return ax.figure.get_figwidth() * box.width, ax.figure.get_figheight() * box.height


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
    max_cols: int = MAX_COLS,
    width: float = WIDTH,
    vmin: float = 0.0,
    vmax: float | None = None,
    colorbar_label: str = "weight",
) -> Figure:
    """Draw a grid of attention maps (for example layers x heads) sharing one colour bar.

    At most ``max_cols`` maps stand side by side (two, so that each stays readable on a phone):
    a row of more maps continues on the next line, and each map is titled with its row and
    column titles.

    Args:
        weights: the maps (any device, gradients allowed).
        x_labels, y_labels: token labels for keys and queries, shared by every map; when there
            are too many to read, every k-th is shown.
        row_titles: one title per row (e.g. ``["layer 1", "layer 2"]``).
        col_titles: one title per column (e.g. ``["head 1", ...]``).
        title: the title of the whole figure.
        xlabel, ylabel: axis labels of the bottom maps and the left ones.
        cmap: a matplotlib colour map name.
        max_cols: maps side by side, 1 or 2.
        width: the figure width in inches.
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
    if max_cols not in range(1, MAX_COLS + 1):
        raise ValueError(f"max_cols must be 1 or {MAX_COLS}, got {max_cols}")
    vmax = max(float(np.nanmax(w)), 1e-12) if vmax is None else float(vmax)
    if not vmax > vmin:
        raise ValueError(f"vmax must be above vmin, got vmin={vmin}, vmax={vmax}")
    grid_cols = min(cols, max_cols)
    lines = math.ceil(cols / grid_cols)  # lines of the grid per row of maps
    grid_rows = rows * lines
    map_width = (width - 1.5) / grid_cols  # inches left for one map (labels and colour bar aside)
    row_room = T * 1.5 * FONT_PT / 72 if y_labels is not None else 1.2  # inches the labels need
    map_height = min(max(map_width * T / S, 1.2, row_room), max(map_width, row_room), 4.0)
    height = grid_rows * (map_height + 0.55) + (0.45 if title else 0.0) + 0.9
    fig, axes = subplots(
        grid_rows,
        grid_cols,
        width=width,
        height=height,
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    for r in range(rows):
        for c in range(cols):
            ax = axes[r * lines + c // grid_cols, c % grid_cols]
            image = ax.imshow(w[r, c], cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
            names = [
                names[i] for names, i in ((row_titles, r), (col_titles, c)) if names is not None
            ]
            if names and (rows > 1 or lines > 1 or r == 0):
                ax.set_title(wrap(", ".join(names), map_width + 0.3, FONT_PT + 0.5))
                ax.title.set_fontsize(FONT_PT + 0.5)
        for c in range(cols, lines * grid_cols):  # empty slots of the last line of this row
            axes[r * lines + c // grid_cols, c % grid_cols].set_visible(False)
    for column in axes.T:  # the lowest map of each column carries the key labels
        ax = [a for a in column if a.get_visible()][-1]
        ax.set_xlabel(xlabel)
        ax.xaxis.set_tick_params(labelbottom=True)
        if x_labels is not None:
            _label_ticks(ax, "x", list(x_labels), map_width)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
        if y_labels is not None:
            _label_ticks(ax, "y", list(y_labels), map_height)
    fig.colorbar(image, ax=axes, shrink=min(0.8, 3.0 / height + 0.3), label=colorbar_label)
    if title:
        fig.suptitle(wrap(title, width))
    return fig
