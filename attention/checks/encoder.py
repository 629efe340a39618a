"""Checker of ``attention.encoder`` (chapter 06): a post-LN encoder layer built from its parts.
Its random layers, residual arrangements and output checks serve ``checks/decoder.py`` too."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..encoder import EncoderLayer
from ..masks import padding_mask
from ._common import CheckFailed, _call, _close, _fail, _first_match, _generator, _randn, _tensor


@dataclass
class _LayerCase:
    """One random case: a float64 layer in eval mode, its input, the memory (decoder) and the
    keys' lengths (``x``'s for the encoder, None = no padding; ``memory``'s for the decoder)."""

    description: str
    layer: nn.Module
    x: torch.Tensor
    lengths: torch.Tensor | None
    memory: torch.Tensor | None = None


def _random_layer(cls: type, gen: torch.Generator, D: int, H: int) -> nn.Module:
    """A float64 layer whose weights all come from ``gen``; its LayerNorms' weights are far from 1
    and biases far from 0, so a norm left out or misplaced always changes the output."""
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


def _sublayers(x: torch.Tensor, steps: list, order: str, skip: tuple[int, ...]) -> torch.Tensor:
    """Run ``(sublayer, norm)`` steps with the residual + LayerNorm arrangement ``order``: the
    paper's ``"post"`` ``norm(x + f(x))``, or a mistake, ``"pre"`` ``x + f(norm(x))``,
    ``"norm_then_add"`` ``x + norm(f(x))``, ``"no_norm"`` ``x + f(x)``; ``skip``: no residual."""
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
    try:
        return _call(name, case, fn, *args)
    except CheckFailed as err:
        hint = None
        if "TypeError" in str(err) and "tuple" in str(err):
            hint = "MultiHeadAttention returns (out, weights); take [0]"
        elif "does not broadcast" in str(err) or "must match the size" in str(err):
            hint = ("a mask does not fit its attention: the causal mask (T, T) belongs to the "
                    "self-attention over y, the source padding mask (B, 1, 1, S) to the "
                    "cross-attention, whose keys and values are the memory")  # fmt: skip
        if hint is None:
            raise
        raise CheckFailed(f"{err}\n  hint: {hint}") from None


def _check_output(name: str, case: _LayerCase, got: object) -> torch.Tensor:
    """Return ``got`` if it is a finite tensor of the input's shape, else fail clearly."""
    if isinstance(got, tuple | list):
        message = f"your function returned a {type(got).__name__}; return only the output tensor"
        raise _fail(name, case.description, message)
    hint = ""
    if case.memory is not None and getattr(got, "shape", None) == case.memory.shape:
        hint = (
            " (the memory's shape: in cross-attention the queries come from the decoder, "
            "cross_attn(y, memory, memory), and the keys and values from the memory)"
        )
    nonfinite = "the output contains NaN or inf: is a row of a mask all False, or a mask inverted?"
    return _tensor(name, case.description, got, case.x.shape, hint, nonfinite=nonfinite)


def _diagnose(got: torch.Tensor, variant: Callable, suspects: list[tuple[str, dict]]) -> str:
    """Name the first usual mistake that reproduces ``got`` (and differs from the reference)."""
    ref = variant()
    return _first_match(got, suspects, variant, right=ref) or (
        f"the output differs from the reference by up to {(got - ref).abs().max():.3g}; check "
        "each sub-layer: out = norm(x + sublayer(x)), the masks, and which norm goes where"
    )


_ORDER_SUSPECTS = [
    ("you wrote a pre-LN layer, x + Sublayer(LayerNorm(x)); the paper's post-LN layer "
     "normalises after the residual sum: LayerNorm(x + Sublayer(x))", dict(order="pre")),
    ("the LayerNorm is applied to the sub-layer's output before the residual is added, "
     "x + LayerNorm(Sublayer(x)); normalise the sum instead: LayerNorm(x + Sublayer(x))",
     dict(order="norm_then_add")),
    ("the LayerNorms are missing: each sub-layer's output is LayerNorm(x + Sublayer(x))",
     dict(order="no_norm")),
]  # fmt: skip


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


def _encoder_variant(case: _LayerCase, *, order="post", skip=(), norms="in_order", mask="ok"):
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
    ("the residual connection around the self-attention is missing: "
     "h = norm1(x + self_attn(x, mask=mask)[0])", dict(skip=(0,))),
    ("the residual connection around the feed-forward block is missing: out = norm2(h + ffn(h))",
     dict(skip=(1,))),
    ("norm1 and norm2 are swapped: norm1 follows the self-attention, norm2 the feed-forward "
     "block", dict(norms="swapped")),
    ("the padding mask is ignored: pass it to the self-attention, self_attn(x, mask=mask)",
     dict(mask="ignored")),
    ("the mask is inverted: True means 'may attend' here, so pass it as it is, not ~mask",
     dict(mask="inverted")),
]  # fmt: skip


def check_encoder_layer(fn: Callable) -> None:
    """Check a learner's post-LN encoder layer, built from given parts, on fresh random cases.

    Args:
        fn: called as ``fn(x, mask, self_attn, ffn, norm1, norm2)`` with float64 ``x``, a bool
            key padding mask (True = real token) or None, a ``MultiHeadAttention`` (which
            returns ``(out, weights)``), a ``FeedForward`` and two ``nn.LayerNorm``; it returns
            ``norm2(h + ffn(h))`` with ``h = norm1(x + self_attn(x, mask=mask)[0])``.

    Shapes:
        x ``(B, S, D)``, mask ``(B, 1, 1, S)`` -> ``(B, S, D)``.

    Introduced in chapter 06 (exercise ex-06-encoder-layer).
    """
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
