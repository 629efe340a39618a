"""The helper package of "Self-Attention, Answered": one tested implementation of each idea.

Notebooks derive each idea inline, prove it equal to the version here (and to PyTorch's own),
then use the version here. Boolean masks mean True = may attend, everywhere. The figures
(``attention.plot``, which needs matplotlib) load on first use, so importing the package is fast.
"""

import importlib

from .additive import AdditiveAttention, additive_attention
from .alignment import cross_attention_alignment
from .allocations import AllocationRecorder, TensorAllocation, largest_allocation
from .classifier import EncoderClassifier, mean_pool
from .core import masked_softmax, scaled_dot_product_attention
from .data import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SENTIMENT_WORDS,
    SHAPE_CLASSES,
    ClassificationData,
    Seq2SeqData,
    iterate_batches,
    make_multi_recall_data,
    make_number_words_data,
    make_random_graph,
    make_recall_data,
    make_retrieval_data,
    make_reversal_data,
    make_sbm_graph,
    make_sentiment_data,
    make_shapes_data,
    make_sorting_data,
    remove_overlap,
    to_text,
)
from .decoder import Decoder, DecoderLayer
from .decoding import greedy_decode, greedy_decode_seq2seq, kv_cache_bytes
from .efficient import flash_attention
from .encoder import Encoder, EncoderLayer
from .gqa import GroupedQueryAttention
from .graph import GATLayer, GCNLayer, complete_graph, normalized_adjacency
from .kv_cache import KVCache, LayerCache
from .layers import FeedForward
from .long_range import LAYER_TYPES, max_path_length, receptive_field
from .losses import masked_cross_entropy
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
from .models import DecoderOnlyLM, Transformer
from .multihead import MultiHeadAttention
from .online_softmax import SoftmaxState, combine_softmax_states, online_softmax_update
from .positional import (
    LearnedPositionalEmbedding,
    RelativePositionBias,
    alibi_bias,
    alibi_slopes,
    apply_rope,
    sinusoidal_positional_encoding,
)
from .profiling import (
    attention_flops_formula,
    count_flops,
    fit_power_law,
    peak_memory,
    time_call,
)
from .rnn import RNNSeq2Seq
from .rollout import attention_rollout
from .training import exact_match_accuracy, train
from .triton_attention import triton_available, triton_flash_attention
from .utils import expect_error, get_device, set_seed
from .vision import (
    PatchEmbedding,
    VisionTransformer,
    patchify,
    sinusoidal_2d_positional_encoding,
)

# attention.plot imports matplotlib.pyplot (about a second) and attention.checks builds its
# cases with most of the package: both load on first use (PEP 562), so `import attention` is fast.
_PLOT_NAMES = (
    "plot_attention",
    "plot_curves",
    "plot_head_split",
    "plot_positional_encoding",
    "plot_similarity_vs_distance",
    "show_heatmaps",
)


def __getattr__(name: str):
    if name in ("checks", "plot"):
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _PLOT_NAMES:
        value = getattr(importlib.import_module(f"{__name__}.plot"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # found directly from now on
    return value


__version__ = "0.1.0"

__all__ = [
    "__version__",
    "AdditiveAttention",
    "AllocationRecorder",
    "BOS_ID",
    "ClassificationData",
    "Decoder",
    "DecoderLayer",
    "DecoderOnlyLM",
    "EOS_ID",
    "Encoder",
    "EncoderClassifier",
    "EncoderLayer",
    "FeedForward",
    "GATLayer",
    "GCNLayer",
    "GroupedQueryAttention",
    "KVCache",
    "LAYER_TYPES",
    "LayerCache",
    "LearnedPositionalEmbedding",
    "MultiHeadAttention",
    "PAD_ID",
    "PatchEmbedding",
    "RNNSeq2Seq",
    "RelativePositionBias",
    "SENTIMENT_WORDS",
    "SHAPE_CLASSES",
    "Seq2SeqData",
    "SoftmaxState",
    "TensorAllocation",
    "Transformer",
    "VisionTransformer",
    "additive_attention",
    "alibi_bias",
    "alibi_slopes",
    "apply_rope",
    "attention_flops_formula",
    "attention_rollout",
    "causal_mask",
    "checks",
    "combine_masks",
    "combine_softmax_states",
    "complete_graph",
    "count_flops",
    "cross_attention_alignment",
    "exact_match_accuracy",
    "expect_error",
    "fit_power_law",
    "flash_attention",
    "from_additive_mask",
    "from_hf_attention_mask",
    "get_device",
    "greedy_decode",
    "greedy_decode_seq2seq",
    "invert_mask",
    "iterate_batches",
    "kv_cache_bytes",
    "largest_allocation",
    "make_multi_recall_data",
    "make_number_words_data",
    "make_random_graph",
    "make_recall_data",
    "make_retrieval_data",
    "make_reversal_data",
    "make_sbm_graph",
    "make_sentiment_data",
    "make_shapes_data",
    "make_sorting_data",
    "masked_cross_entropy",
    "masked_softmax",
    "max_path_length",
    "mean_pool",
    "normalized_adjacency",
    "online_softmax_update",
    "padding_mask",
    "patchify",
    "peak_memory",
    "plot_attention",
    "plot_curves",
    "plot_head_split",
    "plot_positional_encoding",
    "plot_similarity_vs_distance",
    "receptive_field",
    "remove_overlap",
    "scaled_dot_product_attention",
    "set_seed",
    "show_heatmaps",
    "sinusoidal_2d_positional_encoding",
    "sinusoidal_positional_encoding",
    "time_call",
    "to_additive_mask",
    "to_hf_attention_mask",
    "to_text",
    "train",
    "triton_available",
    "triton_flash_attention",
]
