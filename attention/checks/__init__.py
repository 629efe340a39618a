"""Exercise checkers: run a learner's function on fresh random cases and name the likely mistake.

Each ``check_<exercise>(fn)`` draws new random inputs on every call (so hard-coding an answer
fails), runs ``fn`` with the package's reference functions for that exercise out of reach
(``_guard.FORBIDDEN``), compares it with the reference in float64, and either prints one line
saying what passed or raises ``CheckFailed`` (an ``AssertionError``) whose message names the
case and the likely mistake; Jupyter shows that message alone, without a traceback. One module
per package module checked; this package re-exports every checker.
"""

from ._common import CheckFailed
from .additive import check_additive_attention, check_additive_flops
from .alignment import check_alignment
from .article import check_article_attention_fix
from .classifier import check_mean_pool
from .core import check_masked_softmax, check_scaled_dot_product_attention
from .decoder import check_decoder_layer
from .efficient import check_flash_attention
from .encoder import check_encoder_layer
from .graph import check_gat_head
from .kv_cache import check_cached_attention_step
from .long_range import check_max_path_length
from .losses import check_masked_cross_entropy
from .masks import check_decoder_mask, check_mask_conventions
from .multihead import check_multi_head_attention
from .online_softmax import check_online_softmax_update
from .positional import check_alibi_bias, check_sinusoidal_positional_encoding
from .profiling import check_attention_flops
from .rope import check_rope
from .vision import check_patch_embedding

__all__ = [
    "CheckFailed",
    "check_additive_attention",
    "check_additive_flops",
    "check_alibi_bias",
    "check_alignment",
    "check_article_attention_fix",
    "check_attention_flops",
    "check_cached_attention_step",
    "check_decoder_layer",
    "check_decoder_mask",
    "check_encoder_layer",
    "check_flash_attention",
    "check_gat_head",
    "check_mask_conventions",
    "check_masked_cross_entropy",
    "check_masked_softmax",
    "check_max_path_length",
    "check_mean_pool",
    "check_multi_head_attention",
    "check_online_softmax_update",
    "check_patch_embedding",
    "check_rope",
    "check_scaled_dot_product_attention",
    "check_sinusoidal_positional_encoding",
]
