"""Figures of the course: attention maps, curves, head splits and positional encodings.

Every helper labels its axes and takes a title; tensors may live on any device and require
gradients. One module per kind of figure; this package re-exports them all.

One figure style for the whole course (``style``): a notebook calls ``use_course_style()`` once
in its setup cell, makes figures with ``subplots`` (at most two panels side by side) or the
helpers here, and ends each plot cell with ``show(fig)``, which displays a sharp 200 dpi PNG at
100 CSS px per inch and records its smallest font in it for the tests.
"""

from .curves import place_legend, plot_curves
from .flash import plot_memory_hierarchy, plot_tiling
from .heads import plot_head_split
from .maps import plot_attention, show_heatmaps
from .positional import plot_positional_encoding, plot_similarity_vs_distance
from .style import (
    figure_info,
    render_png,
    show,
    subplots,
    text_px,
    use_course_style,
    wrap,
)

__all__ = [
    "figure_info",
    "place_legend",
    "plot_attention",
    "plot_curves",
    "plot_head_split",
    "plot_memory_hierarchy",
    "plot_positional_encoding",
    "plot_similarity_vs_distance",
    "plot_tiling",
    "render_png",
    "show",
    "show_heatmaps",
    "subplots",
    "text_px",
    "use_course_style",
    "wrap",
]
