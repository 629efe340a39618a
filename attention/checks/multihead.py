"""Checker of ``attention.multihead`` (chapter 04); its cases serve ``article`` and ``masks``."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..masks import causal_mask, padding_mask
from ..multihead import MultiHeadAttention
from ._common import (
    CheckFailed,
    _call,
    _close,
    _fail,
    _first_match,
    _generator,
    _randn,
    _random_mask,
    _tensor,
)

_PROJ_NAMES = ("q_proj", "k_proj", "v_proj", "out_proj")


@dataclass
class _MHACase:
    """One random multi-head case: the input, the four projections, the heads, a mask."""

    description: str
    x: torch.Tensor
    layers: tuple[nn.Linear, ...]
    num_heads: int
    mask: torch.Tensor | None = None


def _mha_case(gen: torch.Generator, description: str, B, T, D, H, mask=None) -> _MHACase:
    """A random case: x ``(B, T, D)``, four float64 ``nn.Linear(D, D)`` whose weights come from
    ``gen`` alone, ``H`` heads, a mask."""
    layers = tuple(nn.utils.skip_init(nn.Linear, D, D, dtype=torch.float64) for _ in _PROJ_NAMES)
    with torch.no_grad():
        for layer in layers:
            layer.weight.copy_(_randn(gen, D, D, std=1.5 / math.sqrt(D)))
            layer.bias.copy_(_randn(gen, D, std=0.1))
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
    return tuple(copy.deepcopy(layer) for layer in case.layers)


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
    case: _MHACase, *, split="features", merge="transpose", project=True, shared="", scale="head",
    dim=-1, mask="ok",
) -> torch.Tensor | None:  # fmt: skip
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


_MHA_SUSPECTS = [
    ("heads are split along the wrong axis: view(B, H, T, Dh) without a transpose cuts the "
     "tokens into H blocks, so head h sees a slice of the sequence. Split the features: "
     "q.view(B, T, H, Dh).transpose(1, 2) -> (B, H, T, Dh)",
     dict(split="sequence", merge="reshape")),
    ("the heads are not moved in front of the tokens: after view(B, T, H, Dh) the scores are "
     "(B, T, H, H), so each token attends over its own heads. Add .transpose(1, 2) to get "
     "(B, H, T, Dh)", dict(split="tokens", merge="reshape")),
    ("the heads are merged without transposing back: (B, H, T, Dh).reshape(B, T, D) mixes "
     "tokens; use out.transpose(1, 2).reshape(B, T, D)", dict(merge="reshape")),
    ("the output projection is missing: apply out_proj (W^O) to the concatenated heads",
     dict(project=False)),
    ("Q, K and V all use q_proj: they are three different learned projections, so use "
     "k_proj for the keys and v_proj for the values", dict(shared="q")),
    ("the keys use q_proj: use k_proj for the keys", dict(shared="qk")),
    ("the scores are scaled by 1/sqrt(d_model); each head's dot product spans head_dim = "
     "d_model // num_heads features, so scale by 1/sqrt(head_dim)", dict(scale="model")),
    ("the scores are not scaled: multiply them by 1/sqrt(head_dim)", dict(scale="none")),
    ("the softmax runs over the queries (dim=-2); it must normalise over the keys (dim=-1)",
     dict(dim=-2)),
    ("the softmax runs over the heads (dim=1 of (B, H, T, T)); it must normalise over the "
     "keys (dim=-1)", dict(dim=1)),
]  # fmt: skip

_MASK_SUSPECTS = [
    ("the mask is ignored: fill the scores where mask is False with -inf", dict(mask="ignored")),
    ("the mask polarity is inverted: True means 'may attend', so fill the scores where the "
     "mask is False (~mask)", dict(mask="inverted")),
    ("the mask is applied to the weights after the softmax: zeroing them there leaves rows "
     "that sum to less than 1 (chapter 03); fill the scores with -inf where the mask is "
     "False, before the softmax", dict(mask="after")),
]  # fmt: skip


def _diagnose_mha(case: _MHACase, out: torch.Tensor, extra: list | None = None) -> str:
    extra = [(m, (lambda k=k: k(case)) if callable(k) else k) for m, k in extra or []]
    suspects = extra + _MHA_SUSPECTS + (_MASK_SUSPECTS if case.mask is not None else [])
    found = _first_match(out, suspects, lambda **knobs: _mha_variant(case, **knobs))
    ref = _mha_variant(case)
    return found or (
        f"the output differs from MultiHeadAttention by up to {(out - ref).abs().max():.3g}; "
        "check, in order: q/k/v = q_proj/k_proj/v_proj(x) -> view(B, T, H, Dh).transpose(1, 2), "
        "scores / sqrt(Dh), mask, softmax(dim=-1), @ v, transpose(1, 2).reshape(B, T, D), out_proj"
    )


def _check_mha_output(name: str, case: _MHACase, result: object, extra=None) -> torch.Tensor:
    """Compare one result with the reference; raise the diagnosis, else return the output."""
    out, weights = (result[0], result[1]) if isinstance(result, tuple | list) else (result, None)
    B, T, D = case.x.shape  # batch, tokens, width
    H, shape = case.num_heads, tuple(getattr(out, "shape", ()))
    hint = ""
    if shape == (B, H, T, D // H):
        hint = " (the heads are not merged: out.transpose(1, 2).reshape(B, T, D))"
    elif len(shape) == 3 and shape[1] == H * T:
        hint = " (the heads are concatenated along the tokens, dim=1; use the features, dim=-1)"
    out = _tensor(name, case.description, out, (B, T, D), hint)
    if out.dtype != torch.float64:
        msg = f"the output is {out.dtype} for a float64 input: create no tensors or layers with "
        raise _fail(name, case.description, msg + "a fixed dtype inside; use the given layers")
    if not torch.isfinite(out).all():
        inverted = None if case.mask is None else _mha_variant(case, mask="inverted")
        why = " because the mask polarity is inverted: True means 'may attend'"
        why = (
            why if inverted is not None and _close(out.nan_to_num(), inverted.nan_to_num()) else ""
        )
        raise _fail(name, case.description, f"the output contains NaN or inf{why}")
    with torch.no_grad():
        ref_out, ref_weights = _reference_module(case)(case.x, mask=case.mask)
    if not _close(out, ref_out):
        raise _fail(name, case.description, _diagnose_mha(case, out, extra))
    if isinstance(weights, torch.Tensor) and not _close(weights.detach(), ref_weights):
        raise _fail(name, case.description, f"the output is right but the weights of shape "
                    f"{tuple(weights.shape)} are not: return the per-head softmax weights "
                    f"(B, H, T, S) = {tuple(ref_weights.shape)}")  # fmt: skip
    return out


def _mha_cases(gen: torch.Generator) -> list[_MHACase]:
    """Shapes in which T, H and Dh all differ, so that swapped axes do not go unnoticed."""
    lengths = torch.randint(1, 7, (2,), generator=gen)
    return [
        _mha_case(gen, "self-attention, x (2, 5, 12), 3 heads, no mask", 2, 5, 12, 3),
        _mha_case(gen, "x (3, 7, 24), 4 heads, causal mask (7, 7)", 3, 7, 24, 4, causal_mask(7)),
        _mha_case(gen, f"x (2, 6, 20), 5 heads, padding mask (2, 1, 1, 6) for lengths "
                  f"{lengths.tolist()}", 2, 6, 20, 5, padding_mask(lengths, 6)[:, None, None, :]),
        _mha_case(gen, "x (2, 5, 24), 8 heads, random mask (2, 8, 5, 5)", 2, 5, 24, 8,
                  _random_mask(gen, 2, 8, 5, 5)),
    ]  # fmt: skip


def check_multi_head_attention(fn_or_cls: Callable) -> None:
    """Check a learner's multi-head self-attention against MultiHeadAttention on random cases.

    Args:
        fn_or_cls: a function ``fn(x, q_proj, k_proj, v_proj, out_proj, num_heads, mask=None)``
            that uses the four given ``nn.Linear(D, D)`` (W^Q, W^K, W^V, W^O) and returns
            ``out`` or ``(out, weights)``; or an ``nn.Module`` **class** built as
            ``cls(d_model, num_heads)`` with ``nn.Linear`` submodules ``q_proj, k_proj,
            v_proj, out_proj`` (the checker loads the weights), called as ``module(x)`` or
            ``module(x, mask=mask)``. Inputs are float64; ``mask`` is bool, True = may attend,
            broadcastable to ``(B, H, T, T)``.

    Shapes:
        x ``(B, T, D)`` -> out ``(B, T, D)``, weights ``(B, H, T, T)``.

    Introduced in chapter 04 (exercise ex-04-multi-head).
    """
    name = "check_multi_head_attention"
    if isinstance(fn_or_cls, nn.Module):
        raise CheckFailed(
            f"{name}: pass the class ({type(fn_or_cls).__name__}), not an instance; the checker "
            "builds it as cls(d_model, num_heads) for each case"
        )
    is_cls = isinstance(fn_or_cls, type) and issubclass(fn_or_cls, nn.Module)
    fn = _as_function(fn_or_cls) if is_cls else fn_or_cls
    cases = _mha_cases(_generator())
    for case in cases:
        mask = {} if case.mask is None else {"mask": case.mask}
        args = (case.x, *_fresh_layers(case), case.num_heads)
        _check_mha_output(name, case, _call(name, case.description, fn, *args, **mask))
    print(
        f"{name}: all {len(cases)} random cases passed (3 to 8 heads, no mask, causal, padding "
        "and per-head masks)."
    )
