"""Figures of the course: attention maps, curves, head splits and positional encodings.

Every helper labels its axes and takes a title; tensors may live on any device and require
gradients. One module per kind of figure; this package re-exports them all.
"""

from .curves import plot_curves
from .heads import plot_head_split
from .maps import plot_attention, show_heatmaps
from .positional import plot_positional_encoding, plot_similarity_vs_distance

__all__ = [
    "plot_attention",
    "plot_curves",
    "plot_head_split",
    "plot_positional_encoding",
    "plot_similarity_vs_distance",
    "show_heatmaps",
]
