"""Checker of ``attention.decoder`` (chapter 06): a post-LN decoder layer with its two masks."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable

import torch

from ..decoder import DecoderLayer
from ..masks import causal_mask
from ._common import _close, _fail, _generator, _randn
from .encoder import (
    _ORDER_SUSPECTS,
    _call_layer,
    _check_output,
    _diagnose,
    _key_mask,
    _LayerCase,
    _lengths,
    _random_layer,
    _sublayers,
)


def _decoder_cases(gen: torch.Generator) -> list[_LayerCase]:
    """Targets shorter than, as long as and longer than the source; padding in every memory."""
    cases = []
    for description, B, T, S, D, H in [
        ("y (2, 5, 16), memory (2, 7, 16), 4 heads", 2, 5, 7, 16, 4),
        ("y (3, 6, 12), memory (3, 6, 12), 3 heads", 3, 6, 6, 12, 3),
        ("y (2, 6, 16), memory (2, 3, 16), 4 heads", 2, 6, 3, 16, 4),
    ]:
        layer = _random_layer(DecoderLayer, gen, D, H)
        y, memory = _randn(gen, B, T, D), _randn(gen, B, S, D)
        cases.append(_LayerCase(description, layer, y, _lengths(gen, B, S), memory))
    return cases


def _decoder_variant(
    case: _LayerCase, *, order="post", skip=(), norms=(0, 1, 2), causal="ok", padding="cross",
    cross_kv="memory", swap_attn=False, no_cross=False,
) -> torch.Tensor | None:  # fmt: skip
    """The decoder layer written with one deliberate mistake; None if that version crashes."""
    layer, y, memory = case.layer, case.x, case.memory
    T, S = y.shape[1], memory.shape[1]  # target and source tokens
    ones = torch.ones(T, T, dtype=torch.bool)
    tri = {"ok": causal_mask(T), "none": ones, "triu": ones.triu(), "strict": ones.tril(-1)}
    self_mask, cross_mask = tri[causal], _key_mask(case.lengths, S)
    if padding == "none":
        cross_mask = None
    elif padding == "inverted":
        cross_mask = ~cross_mask
    elif padding == "self":  # the source padding given to the self-attention instead
        if T != S:
            return None  # (T, T) & (B, 1, 1, S) does not broadcast: the learner's code raised
        self_mask, cross_mask = self_mask & cross_mask, None
    self_attn, cross_attn = layer.self_attn, layer.cross_attn
    if swap_attn:
        self_attn, cross_attn = cross_attn, self_attn
    all_norms = (layer.self_attn_norm, layer.cross_attn_norm, layer.ffn_norm)
    norm1, norm2, norm3 = (all_norms[i] for i in norms)
    kv = {"memory": memory, "input": y, "hidden": None}[cross_kv]  # None: from h itself
    steps = [
        (lambda h: self_attn(h, mask=self_mask)[0], norm1),
        (lambda h: cross_attn(h, kv, kv, mask=cross_mask)[0], norm2),
        (layer.ffn, norm3),
    ]
    if no_cross:
        steps = [steps[0], (layer.ffn, norm2)]
    try:
        with torch.no_grad():
            return _sublayers(y, steps, order, skip)
    except ValueError:  # a mask that does not fit the scores
        return None


_DECODER_SUSPECTS = [
    ("the causal mask is missing: in the self-attention, target position t may attend only "
     "to positions <= t, causal_mask(T) (a lower triangle)", dict(causal="none")),
    ("the causal mask points the wrong way: keep keys j <= i (tril), not j >= i (triu)",
     dict(causal="triu")),
    ("the diagonal is masked: a target token may attend to itself, so use tril(), not tril(-1)",
     dict(causal="strict")),
    ("the source padding mask is missing in the cross-attention: pass "
     "padding_mask(src_lengths, S)[:, None, None, :] as its mask", dict(padding="none")),
    ("the source padding mask is inverted: True must mean 'real token', "
     "padding_mask(src_lengths, S), not its negation", dict(padding="inverted")),
    ("the source padding mask went to the self-attention instead of the cross-attention: "
     "padding marks source (memory) tokens, the keys of the cross-attention", dict(padding="self")),
    ("the cross-attention attends over the decoder's own tokens: its keys and values come "
     "from the encoder output, cross_attn(h, memory, memory, mask=...)", dict(cross_kv="hidden")),
    ("the cross-attention attends over the decoder's input y: its keys and values come "
     "from the encoder output, cross_attn(h, memory, memory, mask=...)", dict(cross_kv="input")),
    ("self_attn and cross_attn are swapped: the first sub-layer uses self_attn, the second "
     "cross_attn", dict(swap_attn=True)),
    ("the cross-attention sub-layer is missing: a decoder layer has three sub-layers, masked "
     "self-attention, cross-attention over the memory, then the feed-forward block",
     dict(no_cross=True)),
    *_ORDER_SUSPECTS,
    *[(f"the residual connection around sub-layer {i + 1} ({part}) is missing: each "
       "sub-layer's output is norm(h + sublayer(h))", dict(skip=(i,)))
      for i, part in enumerate(["self-attention", "cross-attention", "feed-forward"])],
    *[("the LayerNorms are used in the wrong order: norm1 follows the self-attention, norm2 "
       "the cross-attention and norm3 the feed-forward block", dict(norms=perm))
      for perm in itertools.permutations(range(3)) if perm != (0, 1, 2)],
]  # fmt: skip


def check_decoder_layer(fn: Callable) -> None:
    """Check a learner's post-LN decoder layer, masks included, on fresh random cases.

    Args:
        fn: called as ``fn(y, memory, src_lengths, self_attn, cross_attn, ffn, norm1, norm2,
            norm3)`` with float64 ``y`` (the target vectors) and ``memory`` (the encoder
            output), the number of real source tokens of each sequence, two
            ``MultiHeadAttention`` (which return ``(out, weights)``), a ``FeedForward`` and
            three ``nn.LayerNorm``. It builds the causal mask of the self-attention and the
            source padding mask of the cross-attention (True = may attend), then runs the
            three post-LN sub-layers.

    Shapes:
        y ``(B, T, D)``, memory ``(B, S, D)``, src_lengths ``(B,)`` -> ``(B, T, D)``.

    Introduced in chapter 06 (exercise ex-06-decoder-layer).
    """
    name = "check_decoder_layer"
    cases = _decoder_cases(_generator())
    for case in cases:
        layer = copy.deepcopy(case.layer)  # the learner's parts: changing them changes nothing here
        args = (case.x.clone(), case.memory.clone(), case.lengths.clone())
        parts = (layer.self_attn, layer.cross_attn, layer.ffn)
        norms = (layer.self_attn_norm, layer.cross_attn_norm, layer.ffn_norm)
        got = _call_layer(name, case.description, fn, *args, *parts, *norms)
        got = _check_output(name, case, got)
        variant = lambda **knobs: _decoder_variant(case, **knobs)  # noqa: B023, E731
        if not _close(got, variant()):
            where = f"{case.description}, source lengths {case.lengths.tolist()}"
            raise _fail(name, where, _diagnose(got, variant, _DECODER_SUSPECTS))
    print(
        f"{name}: all {len(cases)} random cases passed (causal self-attention, cross-attention "
        "over the memory with its padding mask, post-LN residual + LayerNorm, norms in order)."
    )
