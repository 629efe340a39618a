"""The reference guard: a checker cannot be passed by calling the function it checks against.

While the learner's function runs (only then: the checker's own references run outside), a call
to anything ``FORBIDDEN`` lists for that checker fails the check with one message, "check_X:
your function called attention.Y; this exercise asks you to write it yourself". An exercise
forbids only what it asks the learner to write (the encoder layer exercise still hands out a
``MultiHeadAttention`` to call). A profile hook (``sys.setprofile``) compares the code object of
every Python call, so aliases, subclasses and wrappers are caught as surely as the name, and
builtins (``F.scaled_dot_product_attention``) by identity. A new checker adds its entry here; a
test requires one for every checker in ``attention.checks.__all__``.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
import types
from collections.abc import Iterator

_SDPA = (
    "attention.scaled_dot_product_attention",
    "torch.nn.functional.scaled_dot_product_attention",
)
_MHA = (
    "attention.MultiHeadAttention",
    "torch.nn.MultiheadAttention",
    "torch.nn.functional.multi_head_attention_forward",
)

# checker -> what the learner's function may not call (dotted names of functions or classes)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "check_scaled_dot_product_attention": (*_SDPA, "attention.flash_attention"),
    "check_masked_softmax": ("attention.masked_softmax", "attention.scaled_dot_product_attention"),
    "check_mask_conventions": ("attention.invert_mask", "attention.to_additive_mask"),
    "check_decoder_mask": ("attention.combine_masks", "attention.from_hf_attention_mask"),
    "check_multi_head_attention": _MHA,
    "check_article_attention_fix": _MHA,
    "check_sinusoidal_positional_encoding": ("attention.sinusoidal_positional_encoding",),
    "check_rope": ("attention.apply_rope",),
    "check_alibi_bias": ("attention.alibi_bias", "attention.alibi_slopes"),
    "check_encoder_layer": ("attention.EncoderLayer", "attention.Encoder",
                            "torch.nn.TransformerEncoderLayer"),
    "check_decoder_layer": ("attention.DecoderLayer", "attention.Decoder",
                            "torch.nn.TransformerDecoderLayer"),
    "check_masked_cross_entropy": ("attention.masked_cross_entropy",
                                   "torch.nn.functional.cross_entropy"),
    "check_cached_attention_step": _SDPA,
    "check_attention_flops": ("attention.attention_flops_formula", "attention.count_flops"),
    "check_max_path_length": ("attention.max_path_length",),
    "check_online_softmax_update": ("attention.online_softmax_update",
                                    "attention.combine_softmax_states"),
    "check_flash_attention": ("attention.flash_attention", "attention.triton_flash_attention",
                              *_SDPA),
    "check_patch_embedding": ("attention.PatchEmbedding", "attention.patchify",
                              "torch.nn.functional.conv2d", "torch.nn.functional.unfold"),
    "check_gat_head": ("attention.GATLayer",),
    "check_additive_attention": ("attention.additive_attention", "attention.AdditiveAttention"),
    "check_additive_flops": ("attention.count_flops",
                             "torch.utils.flop_counter.FlopCounterMode"),
    "check_alignment": ("attention.cross_attention_alignment",),
    "check_mean_pool": ("attention.mean_pool",),
}  # fmt: skip


def resolve(name: str) -> dict[object, str]:
    """Map the code objects (of a function, or of every method of a class) and the ids (of
    builtins) that a dotted name stands for to that name."""
    module, _, attribute = name.rpartition(".")
    obj = getattr(importlib.import_module(module), attribute)
    watched = {}
    for f in vars(obj).values() if isinstance(obj, type) else [obj]:
        f = inspect.unwrap(getattr(f, "__func__", f))  # classmethods, decorated functions
        if isinstance(f, types.FunctionType):
            watched[f.__code__] = name
        elif isinstance(f, types.BuiltinFunctionType):
            watched[id(f)] = name
    if not watched:
        raise TypeError(f"{name} is neither a function nor a class of functions")
    return watched


@contextlib.contextmanager
def forbidden_calls(check: str) -> Iterator[list[str]]:
    """Watch the calls of the with-block; yield a list that receives the first forbidden one."""
    watched = {k: v for name in FORBIDDEN.get(check, ()) for k, v in resolve(name).items()}
    called: list[str] = []

    def profile(frame: types.FrameType, event: str, arg: object) -> None:
        key = frame.f_code if event == "call" else id(arg) if event == "c_call" else None
        if key in watched and not called:
            called.append(watched[key])

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield called
    finally:
        sys.setprofile(previous)
