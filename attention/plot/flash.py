"""FlashAttention's figures: the GPU memory hierarchy and the order in which tiles are visited."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .style import subplots, wrap


def _unit(value: float, units: Sequence[tuple[float, str]]) -> str:
    """``value`` in the largest unit it reaches, e.g. 40e9 bytes -> '40 GB'."""
    for size, name in units:
        if value >= size:
            return f"{value / size:.3g} {name}"
    return f"{value:.3g} {units[-1][1]}"


_BYTES = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "B")]
_RATES = [(1e12, "TB/s"), (1e9, "GB/s"), (1e6, "MB/s"), (1.0, "B/s")]


def plot_memory_hierarchy(levels: Sequence[tuple[str, float, float]], *, title: str) -> Figure:
    """Draw each memory level's capacity and bandwidth as two bar charts on log scales.

    Args:
        levels: ``(name, capacity in bytes, bandwidth in bytes per second)``, fastest first.
        title: the figure's title (say which device the numbers describe).

    Returns:
        The figure: capacity above, bandwidth below, each bar labelled with its value, so that
        the trade-off (small and fast against large and slow) reads at a glance.

    Shapes:
        levels: any number of levels, at least one.

    Introduced in chapter 11 (FlashAttention from scratch).
    """
    if not levels:
        raise ValueError("levels must name at least one memory level")
    fig, (top, bottom) = subplots(2, 1, height=1.2 + 0.95 * len(levels))
    names = [name for name, _, _ in levels]
    for ax, column, units, label in (
        (top, 1, _BYTES, "capacity (bytes, log scale)"),
        (bottom, 2, _RATES, "bandwidth (bytes per second, log scale)"),
    ):
        values = [level[column] for level in levels]
        if min(values) <= 0:
            raise ValueError(f"capacities and bandwidths must be positive, got {values}")
        bars = ax.barh(names, values, color=["C2", "C0", "C7", "C3"][: len(levels)])
        ax.set_xscale("log")
        ax.invert_yaxis()  # the fastest level on top
        ax.set_xlim(min(values) / 3, max(values) * 40)
        ax.set_xlabel(label)
        ax.bar_label(bars, [_unit(v, units) for v in values], padding=3)
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(wrap(title, fig.get_figwidth()))
    return fig


def plot_tiling(
    T: int,
    S: int,
    block_q: int,
    block_k: int,
    *,
    order: str,
    causal: bool = False,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Draw the T x S score matrix cut into tiles, numbered in the order a schedule visits them.

    ``order="fa1"`` is FlashAttention's Algorithm 1: the outer loop over key blocks (columns),
    the inner loop over query blocks, so the numbers run down each column. ``order="fa2"`` is
    FlashAttention-2's: the outer loop over query blocks (rows), each row a separate program on
    a GPU, so the numbers run along each row. With ``causal``, tiles whose keys all come after
    every query of the tile (bottom-right alignment: key j is hidden from query i when
    j > i + S - T) are skipped and drawn grey; tiles that straddle the diagonal are hatched.

    Args:
        T: queries (rows).
        S: keys (columns).
        block_q: rows per tile (B_r).
        block_k: columns per tile (B_c).
        order: ``"fa1"`` or ``"fa2"``.
        causal: skip the tiles above the diagonal.
        ax: the Axes to draw on; a new figure is made when None.
        title: the title; a default names the schedule.

    Returns:
        The Axes drawn on.

    Shapes:
        (none): draws a ``ceil(T / block_q) x ceil(S / block_k)`` grid of tiles.

    Introduced in chapter 11 (FlashAttention from scratch).
    """
    if order not in ("fa1", "fa2"):
        raise ValueError(f"order must be 'fa1' or 'fa2', got {order!r}")
    for name, value in (("T", T), ("S", S), ("block_q", block_q), ("block_k", block_k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if ax is None:
        _, ax = subplots()
    rows = range(0, T, block_q)
    cols = range(0, S, block_k)
    offset = S - T
    pairs = (
        [(i, j) for j in cols for i in rows]
        if order == "fa1"
        else [(i, j) for i in rows for j in cols]
    )
    step = 0
    for i0, j0 in pairs:
        i1, j1 = min(i0 + block_q, T), min(j0 + block_k, S)
        skipped = causal and j0 > i1 - 1 + offset  # every key after every query of the tile
        straddles = causal and not skipped and j1 - 1 > i0 + offset
        face = "0.85" if skipped else ("C1" if order == "fa1" else "C0")
        ax.add_patch(
            Rectangle(
                (j0, i0), j1 - j0, i1 - i0, facecolor=face, edgecolor="white", linewidth=1.5,
                alpha=1.0 if skipped else 0.55, hatch="//" if straddles else None,
            )
        )  # fmt: skip
        if not skipped:
            step += 1
            ax.text((j0 + j1) / 2, (i0 + i1) / 2, str(step), ha="center", va="center")
    if causal:  # the diagonal of the bottom-right mask: key j = query i + S - T
        ax.plot([max(0, offset), min(S, T + offset)], [max(0, -offset), min(T, S - offset)],
                color="0.2", linewidth=1.2)  # fmt: skip
    ax.set_xlim(0, S)
    ax.set_ylim(T, 0)  # query 0 at the top, as in a matrix
    ax.set_aspect("equal")
    ax.set_xlabel("key j")
    ax.set_ylabel("query i")
    default = (
        "FlashAttention: outer loop over K/V blocks"
        if order == "fa1"
        else "FlashAttention-2: outer loop over Q blocks"
    )
    columns = ax.get_subplotspec().get_gridspec().ncols if ax.get_subplotspec() else 1
    ax.set_title(wrap(title or default, ax.figure.get_figwidth() / columns))
    return ax
