"""Checkers for chapter 04: multi-head attention."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..masks import causal_mask, padding_mask
from ..multihead import MultiHeadAttention
from ._common import _call, _close, _fail, _generator, _randn, _random_mask

# Multi-head attention (chapter 04) and mask conventions (chapter 03) ----------------------------

_PROJ_NAMES = ("q_proj", "k_proj", "v_proj", "out_proj")


@dataclass
class _MHACase:
    """One random multi-head case: the input, the four projections, the heads, a mask."""

    description: str
    x: torch.Tensor
    layers: tuple[nn.Linear, ...]
    num_heads: int
    mask: torch.Tensor | None = None


def _random_linear(gen: torch.Generator, d_model: int) -> nn.Linear:
    """A float64 ``nn.Linear(d_model, d_model)`` whose weights come from ``gen`` alone."""
    layer = nn.utils.skip_init(nn.Linear, d_model, d_model, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(_randn(gen, d_model, d_model, std=1.5 / math.sqrt(d_model)))
        layer.bias.copy_(_randn(gen, d_model, std=0.1))
    return layer


def _mha_case(
    gen: torch.Generator,
    description: str,
    B: int,
    T: int,
    D: int,
    H: int,
    mask: torch.Tensor | None = None,
) -> _MHACase:
    """A random case: x ``(B, T, D)``, four random float64 layers, ``H`` heads, a mask."""
    layers = tuple(_random_linear(gen, D) for _ in _PROJ_NAMES)
    return _MHACase(description, _randn(gen, B, T, D), layers, H, mask)


def _reference_module(case: _MHACase) -> MultiHeadAttention:
    """The package's MultiHeadAttention (eval mode) holding the case's weights."""
    D = case.x.shape[-1]
    ref = nn.utils.skip_init(MultiHeadAttention, D, case.num_heads, dtype=torch.float64)
    for name, layer in zip(_PROJ_NAMES, case.layers, strict=True):
        getattr(ref, name).load_state_dict(layer.state_dict())
    return ref.eval()


def _fresh_layers(case: _MHACase) -> tuple[nn.Linear, ...]:
    """Copies of the case's layers, so that a learner's function cannot alter the reference."""
    copies = []
    for layer in case.layers:
        new = nn.utils.skip_init(nn.Linear, *layer.weight.shape[::-1], dtype=torch.float64)
        new.load_state_dict(layer.state_dict())
        copies.append(new)
    return tuple(copies)


def _as_function(cls: type) -> Callable:
    """Wrap a module class in the function contract: build it, load the weights, call it."""

    def run(x, q_proj, k_proj, v_proj, out_proj, num_heads, mask=None):
        with torch.random.fork_rng(devices=[]):  # its initialisation must not move the seed
            module = cls(x.shape[-1], num_heads)
        module = module.to(torch.float64).eval()
        for name, layer in zip(_PROJ_NAMES, (q_proj, k_proj, v_proj, out_proj), strict=True):
            sub = getattr(module, name, None)
            if not isinstance(sub, nn.Linear):
                raise AttributeError(f"{cls.__name__} has no nn.Linear submodule named {name!r}")
            sub.load_state_dict(layer.state_dict())
        return module(x) if mask is None else module(x, mask=mask)

    return run


def _mha_variant(
    case: _MHACase,
    *,
    split: str = "features",
    merge: str = "transpose",
    project: bool = True,
    shared: str = "",
    scale: str = "head",
    dim: int = -1,
    mask: str = "ok",
) -> torch.Tensor | None:
    """Multi-head attention written with deliberate mistakes; None if that version crashes."""
    q_proj, k_proj, v_proj, out_proj = case.layers
    x, H, m = case.x, case.num_heads, case.mask
    B, T, D = x.shape  # batch, tokens, width
    Dh = D // H  # head width
    if shared == "q":
        k_proj = v_proj = q_proj
    elif shared == "qk":
        k_proj = q_proj
    try:
        with torch.no_grad():
            if shared == "weight":  # the article's Q = K = V = nn.Linear(d, d).weight, no bias
                q = k = v = x @ q_proj.weight.T  # (B, T, D)
            else:
                q, k, v = q_proj(x), k_proj(x), v_proj(x)  # 3 x (B, T, D)
            if split == "features":
                q, k, v = (t.view(B, T, H, Dh).transpose(1, 2) for t in (q, k, v))  # (B, H, T, Dh)
            elif split == "sequence":  # view(B, H, T, Dh): head h gets a block of tokens
                q, k, v = (t.reshape(B, H, T, Dh) for t in (q, k, v))  # (B, T, D) -> (B, H, T, Dh)
            else:  # view(B, T, H, Dh) left untransposed: a token attends over its own heads
                q, k, v = (t.view(B, T, H, Dh) for t in (q, k, v))  # (B, T, D) -> (B, T, H, Dh)
            width = {"head": Dh, "model": D, "none": 1}[scale]
            scores = q @ k.transpose(-2, -1) / math.sqrt(width)  # (B, H, T, T)
            if m is not None and mask in ("ok", "inverted"):
                scores = scores.masked_fill(m if mask == "inverted" else ~m, float("-inf"))
            weights = torch.softmax(scores, dim=dim)  # (B, H, T, T)
            if m is not None and mask == "after":  # zeroed after the softmax: rows sum to < 1
                weights = weights * m
            out = weights @ v  # (B, H, T, T) @ (B, H, T, Dh) -> (B, H, T, Dh)
            if split == "features" and merge == "transpose":
                out = out.transpose(1, 2).reshape(B, T, D)  # (B, H, T, Dh) -> (B, T, D)
            else:
                out = out.reshape(B, T, D)  # no transpose: (B, H, T, Dh) -> (B, T, D)
            return out_proj(out) if project else out
    except RuntimeError:
        return None


def _article_q19(case: _MHACase) -> torch.Tensor:
    """The article's Q19 computation with the case's weights (dropout off)."""
    x, W, out_proj = case.x, case.layers[0].weight, case.layers[3]
    Dh = x.shape[-1] // case.num_heads
    with torch.no_grad():
        attention = torch.softmax(x @ W.T / math.sqrt(Dh), dim=1)  # (B, T, D), over the tokens
        return out_proj(attention @ W)  # (B, T, D) @ (D, D) -> (B, T, D)


_MHA_SUSPECTS = [
    (
        "heads are split along the wrong axis: view(B, H, T, Dh) without a transpose cuts the "
        "tokens into H blocks, so head h sees a slice of the sequence. Split the features: "
        "q.view(B, T, H, Dh).transpose(1, 2) -> (B, H, T, Dh)",
        dict(split="sequence", merge="reshape"),
    ),
    (
        "the heads are not moved in front of the tokens: after view(B, T, H, Dh) the scores are "
        "(B, T, H, H), so each token attends over its own heads. Add .transpose(1, 2) to get "
        "(B, H, T, Dh)",
        dict(split="tokens", merge="reshape"),
    ),
    (
        "the heads are merged without transposing back: (B, H, T, Dh).reshape(B, T, D) mixes "
        "tokens; use out.transpose(1, 2).reshape(B, T, D)",
        dict(merge="reshape"),
    ),
    (
        "the output projection is missing: apply out_proj (W^O) to the concatenated heads",
        dict(project=False),
    ),
    (
        "Q, K and V all use q_proj: they are three different learned projections, so use "
        "k_proj for the keys and v_proj for the values",
        dict(shared="q"),
    ),
    ("the keys use q_proj: use k_proj for the keys", dict(shared="qk")),
    (
        "the scores are scaled by 1/sqrt(d_model); each head's dot product spans head_dim = "
        "d_model // num_heads features, so scale by 1/sqrt(head_dim)",
        dict(scale="model"),
    ),
    ("the scores are not scaled: multiply them by 1/sqrt(head_dim)", dict(scale="none")),
    (
        "the softmax runs over the queries (dim=-2); it must normalise over the keys (dim=-1)",
        dict(dim=-2),
    ),
    (
        "the softmax runs over the heads (dim=1 of (B, H, T, T)); it must normalise over the "
        "keys (dim=-1)",
        dict(dim=1),
    ),
]

_MASK_SUSPECTS = [
    ("the mask is ignored: fill the scores where mask is False with -inf", dict(mask="ignored")),
    (
        "the mask polarity is inverted: True means 'may attend', so fill the scores where the "
        "mask is False (~mask)",
        dict(mask="inverted"),
    ),
    (
        "the mask is applied to the weights after the softmax: zeroing them there leaves rows "
        "that sum to less than 1 (chapter 03); fill the scores with -inf where the mask is "
        "False, before the softmax",
        dict(mask="after"),
    ),
]


def _diagnose_mha(case: _MHACase, out: torch.Tensor, extra: list | None = None) -> str:
    suspects = list(extra or []) + _MHA_SUSPECTS
    if case.mask is not None:
        suspects += _MASK_SUSPECTS
    for message, knobs in suspects:
        variant = knobs(case) if callable(knobs) else _mha_variant(case, **knobs)
        if variant is not None and _close(out, variant):
            return message
    ref = _mha_variant(case)
    return (
        f"the output differs from MultiHeadAttention by up to {(out - ref).abs().max():.3g}; "
        "check, in order: q/k/v = q_proj/k_proj/v_proj(x) -> view(B, T, H, Dh).transpose(1, 2), "
        "scores / sqrt(Dh), mask, softmax(dim=-1), @ v, transpose(1, 2).reshape(B, T, D), out_proj"
    )


def _check_mha_output(
    name: str, case: _MHACase, result: object, extra: list | None = None
) -> torch.Tensor:
    """Compare one result with the reference; raise the diagnosis, else return the output."""
    out, weights = (result[0], result[1]) if isinstance(result, tuple | list) else (result, None)
    if not isinstance(out, torch.Tensor):
        raise _fail(name, case.description, f"expected a tensor, got {type(out).__name__}")
    out = out.detach()
    B, T, D = case.x.shape  # batch, tokens, width
    H = case.num_heads
    if out.shape != (B, T, D):
        hint = ""
        if out.shape == (B, H, T, D // H):
            hint = " (the heads are not merged: out.transpose(1, 2).reshape(B, T, D))"
        elif out.dim() == 3 and out.shape[1] == H * T:
            hint = " (the heads are concatenated along the tokens, dim=1; use the features, dim=-1)"
        raise _fail(
            name,
            case.description,
            f"wrong output shape {tuple(out.shape)}, expected (B, T, D) = {(B, T, D)}{hint}",
        )
    if out.dtype != torch.float64:
        raise _fail(
            name,
            case.description,
            f"the output is {out.dtype} for a float64 input: create no tensors or layers with a "
            "fixed dtype inside; use the given layers",
        )
    if not torch.isfinite(out).all():
        msg = "the output contains NaN or inf"
        inverted = None if case.mask is None else _mha_variant(case, mask="inverted")
        if inverted is not None:
            if _close(out.nan_to_num(0.0), inverted.nan_to_num(0.0)):
                msg += " because the mask polarity is inverted: True means 'may attend'"
        raise _fail(name, case.description, msg)
    with torch.no_grad():
        ref_out, ref_weights = _reference_module(case)(case.x, mask=case.mask)
    if not _close(out, ref_out):
        raise _fail(name, case.description, _diagnose_mha(case, out, extra))
    if isinstance(weights, torch.Tensor) and not _close(weights.detach(), ref_weights):
        raise _fail(
            name,
            case.description,
            f"the output is right but the weights of shape {tuple(weights.shape)} are not: "
            f"return the per-head softmax weights (B, H, T, S) = {tuple(ref_weights.shape)}",
        )
    return out


def _mha_cases(gen: torch.Generator) -> list[_MHACase]:
    """Shapes in which T, H and Dh all differ, so that swapped axes do not go unnoticed."""
    lengths = torch.randint(1, 7, (2,), generator=gen)
    return [
        _mha_case(gen, "self-attention, x (2, 5, 12), 3 heads, no mask", 2, 5, 12, 3),
        _mha_case(gen, "x (3, 7, 24), 4 heads, causal mask (7, 7)", 3, 7, 24, 4, causal_mask(7)),
        _mha_case(
            gen,
            f"x (2, 6, 20), 5 heads, padding mask (2, 1, 1, 6) for lengths {lengths.tolist()}",
            2,
            6,
            20,
            5,
            padding_mask(lengths, 6)[:, None, None, :],
        ),
        _mha_case(
            gen,
            "x (2, 5, 24), 8 heads, random mask (2, 8, 5, 5)",
            2,
            5,
            24,
            8,
            _random_mask(gen, 2, 8, 5, 5),
        ),
    ]


def check_multi_head_attention(fn_or_cls: Callable) -> None:
    """Check a learner's multi-head self-attention against MultiHeadAttention on random cases.

    Two contracts are accepted:

    * a function ``fn(x, q_proj, k_proj, v_proj, out_proj, num_heads, mask=None)`` that uses
      the four given ``nn.Linear(D, D)`` layers (W^Q, W^K, W^V, W^O) and returns ``out`` or
      ``(out, weights)``;
    * an ``nn.Module`` **class** built as ``cls(d_model, num_heads)``, with ``nn.Linear``
      submodules ``q_proj, k_proj, v_proj, out_proj`` (the checker loads the weights), called
      as ``module(x)`` or ``module(x, mask=mask)``. ``MultiHeadAttention`` itself passes.

    Inputs are float64; ``mask`` is bool, True = may attend, broadcastable to ``(B, H, T, T)``.

    Args:
        fn_or_cls: the function or module class to check.

    Returns:
        None; prints one line when every case passes.

    Raises:
        AssertionError: naming the case and the likely mistake (heads split along the wrong
            axis, a missing transpose, no output projection, shared Q/K/V weights, the scale
            1/sqrt(d_model), the softmax axis, a mask ignored, inverted or applied to the
            weights after the softmax).

    Shapes:
        x ``(B, T, D)`` -> out ``(B, T, D)``, weights ``(B, H, T, T)``.

    Introduced in chapter 04 (exercise ex-04-multi-head).
    """
    __tracebackhide__ = True  # show the learner the verdict, not the checker's frames
    name = "check_multi_head_attention"
    if isinstance(fn_or_cls, nn.Module):
        raise AssertionError(
            f"{name}: pass the class ({type(fn_or_cls).__name__}), not an instance; the checker "
            "builds it as cls(d_model, num_heads) for each case"
        )
    is_cls = isinstance(fn_or_cls, type) and issubclass(fn_or_cls, nn.Module)
    fn = _as_function(fn_or_cls) if is_cls else fn_or_cls
    cases = _mha_cases(_generator())
    for case in cases:
        call = fn if case.mask is None else functools.partial(fn, mask=case.mask)
        result = _call(name, case.description, call, case.x, *_fresh_layers(case), case.num_heads)
        _check_mha_output(name, case, result)
    print(
        f"{name}: all {len(cases)} random cases passed (3 to 8 heads, no mask, causal, padding "
        "and per-head masks)."
    )
