"""The helper package of "Self-Attention, Answered": one tested implementation of each idea.

Notebooks derive each idea inline, prove it equal to the version here (and to PyTorch's own),
then use the version here. Boolean masks mean True = may attend, everywhere.
"""

from . import checks
from .core import masked_softmax, scaled_dot_product_attention
from .masks import (
    causal_mask,
    combine_masks,
    from_additive_mask,
    from_hf_attention_mask,
    invert_mask,
    padding_mask,
    to_additive_mask,
    to_hf_attention_mask,
)
from .multihead import MultiHeadAttention
from .plot import (
    plot_attention,
    plot_curves,
    plot_head_split,
    plot_positional_encoding,
    plot_similarity_vs_distance,
    show_heatmaps,
)
from .positional import (
    LearnedPositionalEmbedding,
    RelativePositionBias,
    alibi_bias,
    alibi_slopes,
    apply_rope,
    sinusoidal_positional_encoding,
)
from .utils import get_device, set_seed

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "LearnedPositionalEmbedding",
    "MultiHeadAttention",
    "RelativePositionBias",
    "alibi_bias",
    "alibi_slopes",
    "apply_rope",
    "causal_mask",
    "checks",
    "combine_masks",
    "from_additive_mask",
    "from_hf_attention_mask",
    "get_device",
    "invert_mask",
    "masked_softmax",
    "padding_mask",
    "plot_attention",
    "plot_curves",
    "plot_head_split",
    "plot_positional_encoding",
    "plot_similarity_vs_distance",
    "scaled_dot_product_attention",
    "set_seed",
    "show_heatmaps",
    "sinusoidal_positional_encoding",
    "to_additive_mask",
    "to_hf_attention_mask",
]
