"""Exercise checkers: run a learner's function on fresh random cases and name the likely mistake.

Each ``check_<exercise>(fn)`` draws new random inputs on every call (so hard-coding an answer
fails), compares ``fn`` with the package's reference in float64, and either prints one line
saying what passed or raises ``AssertionError`` with a diagnosis of the usual mistake.
One module per chapter; this package re-exports every checker.
"""

from .article import check_article_attention_fix
from .cost import check_attention_flops
from .efficient import check_flash_attention, check_online_softmax_update
from .encoder_decoder import check_decoder_layer, check_encoder_layer
from .kv_cache import check_cached_attention_step
from .losses import check_masked_cross_entropy
from .masks import check_decoder_mask, check_mask_conventions
from .multihead import check_multi_head_attention
from .path_length import check_max_path_length
from .positional import check_alibi_bias, check_rope, check_sinusoidal_positional_encoding
from .sdpa import check_masked_softmax, check_scaled_dot_product_attention

__all__ = [
    "check_alibi_bias",
    "check_article_attention_fix",
    "check_attention_flops",
    "check_cached_attention_step",
    "check_decoder_layer",
    "check_decoder_mask",
    "check_encoder_layer",
    "check_flash_attention",
    "check_mask_conventions",
    "check_masked_cross_entropy",
    "check_masked_softmax",
    "check_max_path_length",
    "check_multi_head_attention",
    "check_online_softmax_update",
    "check_rope",
    "check_scaled_dot_product_attention",
    "check_sinusoidal_positional_encoding",
]
