"""Labelled curves against a shared x axis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from matplotlib.axes import Axes

from ._common import _to_numpy
from .style import FONT_PT, subplots, wrap


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
    legend: str | None = "best",
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
        legend: where the legend goes: a matplotlib ``loc`` inside the axes (``"best"``,
            ``"upper left"``, ...), ``"below"`` (under the axes, for many or long labels) or
            None (no legend).

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
        _, ax = subplots()
    for label, y in curves.items():
        ys = _to_numpy(torch.as_tensor(y), label)
        if ys.shape != xs.shape:
            raise ValueError(f"curve {label!r} has shape {ys.shape} but x has shape {xs.shape}")
        if label in dashed:  # grey, and told apart by their dashes when there are several
            style = ("--", "-.", ":")[list(dashed).index(label) % 3]
            ax.plot(xs, ys, linestyle=style, color="0.4", label=label)
        else:
            ax.plot(xs, ys, marker="o" if markers else None, label=label)
    if logx:
        ax.set_xscale("log", base=2)
        _label_measured_x(ax, xs)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(wrap(title, _axes_width(ax)))
    ax.grid(True, alpha=0.3)
    place_legend(ax, legend)
    return ax


def _label_measured_x(ax: Axes, xs) -> None:
    """Tick every measured x value on a log axis, labelling those that do not touch a neighbour.

    Labels are kept from left to right when their centre is far enough from the last kept one:
    half of each label (0.6 em per character) plus a gap, with the Axes' width estimated as 80%
    of its grid column.
    """
    import math

    labels = [f"{value:g}" for value in xs]  # the measured x values, not 2^k
    logs = [math.log2(value) if value > 0 else float("nan") for value in xs]
    finite = [v for v in logs if v == v]
    span = (max(finite) - min(finite)) if len(finite) > 1 else 1.0
    points_per_unit = 0.8 * _axes_width(ax) * 72 / (span or 1.0)
    shown, last = [], None
    for label, position in zip(labels, logs, strict=True):
        width = len(label) * 0.6 * FONT_PT
        if position != position:
            shown.append("")
            continue
        if last is not None:
            need = (last[1] + width) / 2 + 0.6 * FONT_PT
            if (position - last[0]) * points_per_unit < need:
                shown.append("")
                continue
        shown.append(label)
        last = (position, width)
    ax.set_xticks(xs, shown)
    ax.minorticks_off()


def _axes_width(ax: Axes) -> float:
    """The width in inches of one column of the grid the Axes sits in (for wrapping its title)."""
    spec = ax.get_subplotspec()
    columns = spec.get_gridspec().ncols if spec is not None else 1
    return ax.figure.get_figwidth() / columns


def place_legend(ax: Axes, where: str | None = "best") -> None:
    """Draw the Axes' legend inside it (a matplotlib ``loc``), ``"below"`` it, or not at all.

    Below, the entries go in two columns under the x label; the constrained layout makes room.
    """
    for old in list(ax.figure.legends):  # placing again replaces the figure-level legend
        old.remove()
    if where is None:
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
        return
    if where == "below":
        handles, labels = ax.get_legend_handles_labels()
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        half = ax.figure.get_figwidth() * 72 / 2 - 3 * FONT_PT  # points for one column's label
        fits = max(len(label) for label in labels) * 0.6 * FONT_PT <= half
        columns = min(2 if fits else 1, len(labels))
        if len(ax.figure.axes) == 1:  # the figure's own legend: the layout makes room for it
            fig = ax.figure
            rows = -(-len(labels) // columns)
            fig.set_figheight(fig.get_figheight() + 0.25 * rows + 0.1)  # the plot keeps its size
            fig.legend(handles, labels, loc="outside lower center", ncols=columns, frameon=False)
        else:  # under this Axes' tick labels and x label (about 3.6 font sizes tall)
            ax.legend(
                handles,
                labels,
                loc="upper center",
                bbox_to_anchor=(0.5, 0.0),
                borderaxespad=3.6,
                ncols=columns,
            )
        return
    ax.legend(loc=where)
