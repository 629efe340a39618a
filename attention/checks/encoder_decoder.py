"""Checkers for chapter 06: a post-LN encoder layer, and a decoder layer with its two masks."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..decoder import DecoderLayer
from ..encoder import EncoderLayer
from ..masks import causal_mask, padding_mask
from ._common import _call, _close, _fail, _generator, _randn


@dataclass
class _LayerCase:
    """One random case: a float64 layer in eval mode, its input, the memory and source lengths.

    For the encoder, ``lengths`` are those of ``x`` itself (None = no padding mask); for the
    decoder, those of ``memory``.
    """

    description: str
    layer: nn.Module
    x: torch.Tensor
    lengths: torch.Tensor | None
    memory: torch.Tensor | None = None


def _random_layer(cls: type, gen: torch.Generator, D: int, H: int) -> nn.Module:
    """A float64 layer whose weights, LayerNorms included, all come from ``gen``.

    The LayerNorms get weights far from 1 and biases far from 0, so a norm left out or used in
    the wrong place always changes the output.
    """
    with torch.random.fork_rng(devices=[]):  # building it must not move the learner's seed
        layer = cls(D, H, 2 * D, dtype=torch.float64)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + _randn(gen, *p.shape, std=0.3))
            elif p.dim() == 2:  # (out, in): scaled so that attention is neither flat nor one-hot
                p.copy_(_randn(gen, *p.shape, std=1.5 / math.sqrt(p.shape[1])))
            else:
                p.copy_(_randn(gen, *p.shape, std=0.3))
    return layer.eval()


def _lengths(gen: torch.Generator, B: int, S: int) -> torch.Tensor:
    """Random lengths in 1..S with at least one sequence padded and one full."""
    n = torch.randint(1, S, (B,), generator=gen)  # all padded ...
    n[torch.randint(0, B, (1,), generator=gen)] = S  # ... but one
    return n


def _key_mask(lengths: torch.Tensor | None, S: int) -> torch.Tensor | None:
    """The key padding mask ``(B, 1, 1, S)``, True = real token, or None."""
    return None if lengths is None else padding_mask(lengths, S)[:, None, None, :]


def _sublayers(
    x: torch.Tensor, steps: list[tuple[Callable, nn.Module]], order: str, skip: tuple[int, ...]
) -> torch.Tensor:
    """Run ``(sublayer, norm)`` steps with the residual + LayerNorm arrangement ``order``.

    ``"post"`` is the paper's ``norm(x + f(x))``; the others are the usual mistakes:
    ``"pre"`` = ``x + f(norm(x))``, ``"norm_then_add"`` = ``x + norm(f(x))``,
    ``"no_norm"`` = ``x + f(x)``. Steps listed in ``skip`` lose their residual.
    """
    for i, (f, norm) in enumerate(steps):
        keep = 0.0 if i in skip else 1.0
        if order == "post":
            x = norm(keep * x + f(x))
        elif order == "pre":
            x = keep * x + f(norm(x))
        elif order == "norm_then_add":
            x = keep * x + norm(f(x))
        else:  # "no_norm"
            x = keep * x + f(x)
    return x


def _call_layer(name: str, case: str, fn: Callable, *args: object) -> object:
    """Call the learner's function; add a hint when a (out, weights) tuple was used as a tensor."""
    __tracebackhide__ = True  # IPython and pytest hide this frame from tracebacks
    try:
        return _call(name, case, fn, *args)
    except AssertionError as err:
        hint = None
        if "TypeError" in str(err) and "tuple" in str(err):
            hint = "MultiHeadAttention returns (out, weights); take [0]"
        elif "does not broadcast" in str(err) or "must match the size" in str(err):
            hint = (
                "a mask does not fit its attention: the causal mask (T, T) belongs to the "
                "self-attention over y, the source padding mask (B, 1, 1, S) to the "
                "cross-attention, whose keys and values are the memory"
            )
        if hint is None:
            raise
        raise AssertionError(f"{err}\n  hint: {hint}") from None


def _check_output(name: str, case: _LayerCase, got: object) -> torch.Tensor:
    """Return ``got`` if it is a finite tensor of the input's shape, else fail clearly."""
    __tracebackhide__ = True
    if isinstance(got, tuple | list):
        raise _fail(
            name, case.description,
            f"your function returned a {type(got).__name__}; return only the output tensor",
        )  # fmt: skip
    if not isinstance(got, torch.Tensor):
        raise _fail(name, case.description, f"expected a tensor, got {type(got).__name__}")
    if got.shape != case.x.shape:
        hint = ""
        if case.memory is not None and got.shape == case.memory.shape:
            hint = (
                " (the memory's shape: in cross-attention the queries come from the decoder, "
                "cross_attn(y, memory, memory), and the keys and values from the memory)"
            )
        raise _fail(
            name, case.description,
            f"wrong output shape {tuple(got.shape)}, expected {tuple(case.x.shape)}{hint}",
        )  # fmt: skip
    if not torch.isfinite(got).all():
        raise _fail(
            name, case.description,
            "the output contains NaN or inf: is a row of a mask all False, or a mask inverted?",
        )  # fmt: skip
    return got


def _diagnose(got: torch.Tensor, variant: Callable, suspects: list[tuple[str, dict]]) -> str:
    """Name the first usual mistake that reproduces ``got`` (and differs from the reference)."""
    ref = variant()
    for message, knobs in suspects:
        out = variant(**knobs)
        if out is not None and not _close(out, ref) and _close(got, out):
            return message
    return (
        f"the output differs from the reference by up to {(got - ref).abs().max():.3g}; check "
        "each sub-layer: out = norm(x + sublayer(x)), the masks, and which norm goes where"
    )


_ORDER_SUSPECTS = [
    (
        "you wrote a pre-LN layer, x + Sublayer(LayerNorm(x)); the paper's post-LN layer "
        "normalises after the residual sum: LayerNorm(x + Sublayer(x))",
        dict(order="pre"),
    ),
    (
        "the LayerNorm is applied to the sub-layer's output before the residual is added, "
        "x + LayerNorm(Sublayer(x)); normalise the sum instead: LayerNorm(x + Sublayer(x))",
        dict(order="norm_then_add"),
    ),
    (
        "the LayerNorms are missing: each sub-layer's output is LayerNorm(x + Sublayer(x))",
        dict(order="no_norm"),
    ),
]


# The encoder layer (exercise ex-06-encoder-layer) ---------------------------------------------


def _encoder_cases(gen: torch.Generator) -> list[_LayerCase]:
    """No mask, then padding masks; widths 16 and 12 (3 heads). Descriptions are fixed text."""
    cases = []
    for description, B, S, D, H, padded in [
        ("x (2, 5, 16), 4 heads, no mask", 2, 5, 16, 4, False),
        ("x (3, 7, 16), 4 heads, a padding mask (3, 1, 1, 7)", 3, 7, 16, 4, True),
        ("x (2, 6, 12), 3 heads, a padding mask (2, 1, 1, 6)", 2, 6, 12, 3, True),
    ]:
        layer = _random_layer(EncoderLayer, gen, D, H)
        lengths = _lengths(gen, B, S) if padded else None
        cases.append(_LayerCase(description, layer, _randn(gen, B, S, D), lengths))
    return cases


def _encoder_variant(
    case: _LayerCase,
    *,
    order: str = "post",
    skip: tuple[int, ...] = (),
    norms: str = "in_order",
    mask: str = "ok",
) -> torch.Tensor:
    """The encoder layer written with one deliberate mistake (defaults: the right layer)."""
    layer, x = case.layer, case.x
    m = _key_mask(case.lengths, x.shape[1])
    if m is not None and mask != "ok":
        m = None if mask == "ignored" else ~m
    norm1, norm2 = layer.self_attn_norm, layer.ffn_norm
    if norms == "swapped":
        norm1, norm2 = norm2, norm1
    steps = [(lambda h: layer.self_attn(h, mask=m)[0], norm1), (layer.ffn, norm2)]
    with torch.no_grad():
        return _sublayers(x, steps, order, skip)


_ENCODER_SUSPECTS = _ORDER_SUSPECTS + [
    (
        "the residual connection around the self-attention is missing: "
        "h = norm1(x + self_attn(x, mask=mask)[0])",
        dict(skip=(0,)),
    ),
    (
        "the residual connection around the feed-forward block is missing: out = norm2(h + ffn(h))",
        dict(skip=(1,)),
    ),
    (
        "norm1 and norm2 are swapped: norm1 follows the self-attention, norm2 the feed-forward "
        "block",
        dict(norms="swapped"),
    ),
    (
        "the padding mask is ignored: pass it to the self-attention, self_attn(x, mask=mask)",
        dict(mask="ignored"),
    ),
    (
        "the mask is inverted: True means 'may attend' here, so pass it as it is, not ~mask",
        dict(mask="inverted"),
    ),
]


def check_encoder_layer(fn: Callable) -> None:
    """Check a learner's post-LN encoder layer, built from given parts, on fresh random cases.

    Args:
        fn: called as ``fn(x, mask, self_attn, ffn, norm1, norm2)`` with float64 ``x``, a bool
            key padding mask (True = real token) or None, a ``MultiHeadAttention`` (which
            returns ``(out, weights)``), a ``FeedForward`` and two ``nn.LayerNorm``; it returns
            ``norm2(h + ffn(h))`` with ``h = norm1(x + self_attn(x, mask=mask)[0])``.

    Returns:
        None; prints one line when every case passes.

    Raises:
        AssertionError: naming the case and the likely mistake (pre-LN, the norm before the
            residual sum, a missing residual or norm, swapped norms, the mask ignored or
            inverted).

    Shapes:
        x ``(B, S, D)``, mask ``(B, 1, 1, S)`` -> ``(B, S, D)``.

    Introduced in chapter 06 (exercise ex-06-encoder-layer).
    """
    __tracebackhide__ = True  # show the learner the verdict, not the checker's frames
    name = "check_encoder_layer"
    cases = _encoder_cases(_generator())
    for case in cases:
        layer = copy.deepcopy(case.layer)  # the learner's parts: changing them changes nothing here
        mask = _key_mask(case.lengths, case.x.shape[1])
        args = (case.x.clone(), mask, layer.self_attn, layer.ffn)
        got = _call_layer(name, case.description, fn, *args, layer.self_attn_norm, layer.ffn_norm)
        got = _check_output(name, case, got)
        variant = lambda **knobs: _encoder_variant(case, **knobs)  # noqa: B023, E731
        if not _close(got, variant()):
            raise _fail(name, case.description, _diagnose(got, variant, _ENCODER_SUSPECTS))
    print(
        f"{name}: all {len(cases)} random cases passed (post-LN residual + LayerNorm around "
        "both sub-layers, norms in order, padding mask)."
    )


# The decoder layer and its two masks (exercise ex-06-decoder-layer) -----------------------------


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
    case: _LayerCase,
    *,
    order: str = "post",
    skip: tuple[int, ...] = (),
    norms: tuple[int, int, int] = (0, 1, 2),
    causal: str = "ok",
    padding: str = "cross",
    cross_kv: str = "memory",
    swap_attn: bool = False,
    no_cross: bool = False,
) -> torch.Tensor | None:
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
    (
        "the causal mask is missing: in the self-attention, target position t may attend only "
        "to positions <= t, causal_mask(T) (a lower triangle)",
        dict(causal="none"),
    ),
    (
        "the causal mask points the wrong way: keep keys j <= i (tril), not j >= i (triu)",
        dict(causal="triu"),
    ),
    (
        "the diagonal is masked: a target token may attend to itself, so use tril(), not tril(-1)",
        dict(causal="strict"),
    ),
    (
        "the source padding mask is missing in the cross-attention: pass "
        "padding_mask(src_lengths, S)[:, None, None, :] as its mask",
        dict(padding="none"),
    ),
    (
        "the source padding mask is inverted: True must mean 'real token', "
        "padding_mask(src_lengths, S), not its negation",
        dict(padding="inverted"),
    ),
    (
        "the source padding mask went to the self-attention instead of the cross-attention: "
        "padding marks source (memory) tokens, the keys of the cross-attention",
        dict(padding="self"),
    ),
    (
        "the cross-attention attends over the decoder's own tokens: its keys and values come "
        "from the encoder output, cross_attn(h, memory, memory, mask=...)",
        dict(cross_kv="hidden"),
    ),
    (
        "the cross-attention attends over the decoder's input y: its keys and values come "
        "from the encoder output, cross_attn(h, memory, memory, mask=...)",
        dict(cross_kv="input"),
    ),
    (
        "self_attn and cross_attn are swapped: the first sub-layer uses self_attn, the second "
        "cross_attn",
        dict(swap_attn=True),
    ),
    (
        "the cross-attention sub-layer is missing: a decoder layer has three sub-layers, masked "
        "self-attention, cross-attention over the memory, then the feed-forward block",
        dict(no_cross=True),
    ),
    *_ORDER_SUSPECTS,
    *[
        (
            f"the residual connection around sub-layer {i + 1} ({part}) is missing: each "
            "sub-layer's output is norm(h + sublayer(h))",
            dict(skip=(i,)),
        )
        for i, part in enumerate(["self-attention", "cross-attention", "feed-forward"])
    ],
    *[
        (
            "the LayerNorms are used in the wrong order: norm1 follows the self-attention, "
            "norm2 the cross-attention and norm3 the feed-forward block",
            dict(norms=perm),
        )
        for perm in itertools.permutations(range(3))
        if perm != (0, 1, 2)
    ],
]


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

    Returns:
        None; prints one line when every case passes.

    Raises:
        AssertionError: naming the case and the likely mistake (a causal mask missing or
            reversed, the padding mask missing, inverted or in the wrong sub-layer, keys and
            values not from the memory, swapped modules, a missing sub-layer, residual or norm,
            pre-LN, norms out of order).

    Shapes:
        y ``(B, T, D)``, memory ``(B, S, D)``, src_lengths ``(B,)`` -> ``(B, T, D)``.

    Introduced in chapter 06 (exercise ex-06-decoder-layer).
    """
    __tracebackhide__ = True  # show the learner the verdict, not the checker's frames
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
            message = _diagnose(got, variant, _DECODER_SUSPECTS)
            raise _fail(
                name, f"{case.description}, source lengths {case.lengths.tolist()}", message
            )
    print(
        f"{name}: all {len(cases)} random cases passed (causal self-attention, cross-attention "
        "over the memory with its padding mask, post-LN residual + LayerNorm, norms in order)."
    )
