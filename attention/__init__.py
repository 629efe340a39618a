"""The helper package of "Self-Attention, Answered": one tested implementation of each idea.

Notebooks derive each idea inline, prove it equal to the version here (and to PyTorch's own),
then use the version here. Boolean masks mean True = may attend, everywhere.
"""

from . import checks
from .core import masked_softmax, scaled_dot_product_attention
from .masks import causal_mask, padding_mask
from .plot import plot_attention, plot_curves, show_heatmaps
from .utils import get_device, set_seed

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "causal_mask",
    "checks",
    "get_device",
    "masked_softmax",
    "padding_mask",
    "plot_attention",
    "plot_curves",
    "scaled_dot_product_attention",
    "set_seed",
    "show_heatmaps",
]
