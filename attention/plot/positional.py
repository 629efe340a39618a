"""Positional-encoding tables and their similarity by distance (chapter 05)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from matplotlib.axes import Axes

from ._common import _to_numpy
from .curves import _axes_width, place_legend
from .style import subplots, wrap


def plot_positional_encoding(
    pe: torch.Tensor,
    ax: Axes | None = None,
    title: str | None = "Positional encoding",
    *,
    xlabel: str = "feature (even: sin, odd: cos)",
    ylabel: str = "position",
    cmap: str = "RdBu_r",
    colorbar: bool = True,
) -> Axes:
    """Draw a positional-encoding table as a heatmap: a row per position, a column per feature.

    The colour scale is symmetric around 0 (white), so sines and cosines read alike.

    Args:
        pe: the table (any device, gradients allowed), e.g. ``sinusoidal_positional_encoding``.
        ax: the Axes to draw on; a new figure is made when None.
        title: the title.
        xlabel, ylabel: axis labels.
        cmap: a diverging matplotlib colour map name.
        colorbar: whether to add a colour bar.

    Returns:
        The Axes drawn on.

    Shapes:
        pe ``(max_len, D)``; leading dims of size 1 are squeezed (the article's ``(1, L, D)``).

    Introduced in chapter 05.
    """
    table = _to_numpy(pe, "pe")
    shape = tuple(table.shape)
    while table.ndim > 2 and table.shape[0] == 1:
        table = table[0]
    if table.ndim != 2:
        raise ValueError(f"pe must be one (max_len, D) table, got shape {shape}")
    if ax is None:
        _, ax = subplots()
    limit = max(float(abs(table).max()), 1e-12)
    image = ax.imshow(table, cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(wrap(title, _axes_width(ax)))
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="value")
    return ax


def plot_similarity_vs_distance(
    encodings: torch.Tensor | Mapping[str, torch.Tensor],
    *,
    anchor: int = 0,
    cosine: bool = False,
    ax: Axes | None = None,
    title: str = "Similarity of two positions' encodings vs their distance",
    xlabel: str = "distance k (positions)",
    ylabel: str | None = None,
    legend: str | None = "best",
) -> Axes:
    """Plot ``PE[anchor] · PE[anchor + k]`` (or its cosine) against the distance ``k``.

    Args:
        encodings: one table, or a mapping from legend label to table (widths may differ).
        anchor: the position compared with every later one.
        cosine: divide by both norms, so tables of different widths share one scale.
        ax: the Axes to draw on; a new figure is made when None.
        title, xlabel: labels; ylabel defaults to a description of the measure.
        legend: where the legend goes (see ``plot_curves``): a ``loc``, ``"below"`` or None.

    Returns:
        The Axes drawn on.

    Shapes:
        each table ``(max_len, D)``, with ``anchor < max_len``; one curve of ``max_len - anchor``
        points each.

    Introduced in chapter 05.
    """
    if isinstance(encodings, torch.Tensor):
        encodings = {"encoding": encodings}
    if not encodings:
        raise ValueError("encodings is empty: pass a (max_len, D) table or a mapping of them")
    if ax is None:
        _, ax = subplots()
    for label, pe in encodings.items():
        table = torch.as_tensor(_to_numpy(pe, label), dtype=torch.float64)
        if table.ndim != 2 or not 0 <= anchor < table.shape[0]:
            raise ValueError(
                f"{label!r}: need a (max_len, D) table with 0 <= anchor={anchor} < max_len, "
                f"got shape {tuple(table.shape)}"
            )
        rest = table[anchor:]  # (max_len - anchor, D): positions anchor, anchor + 1, ...
        sims = rest @ table[anchor]  # (max_len - anchor,)
        if cosine:
            sims = sims / (rest.norm(dim=-1) * table[anchor].norm()).clamp(min=1e-12)
        ax.plot(range(len(sims)), sims.numpy(), label=label)
    measure = "cosine similarity" if cosine else "dot product"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or f"{measure} of PE[{anchor}] and PE[{anchor} + k]")
    ax.set_title(wrap(title, _axes_width(ax)))
    ax.grid(True, alpha=0.3)
    place_legend(ax, legend)
    return ax
