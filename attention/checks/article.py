"""Checker of chapter 04's bug hunt: the article's Q19/Q20 code, fixed (``attention.multihead``
with dropout on the weights)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import nn

from ._common import _call, _close, _fail, _generator
from .multihead import _check_mha_output, _fresh_layers, _mha_case, _MHACase


def _article_q19(case: _MHACase) -> torch.Tensor:
    """The article's Q19 computation with the case's weights (dropout off)."""
    x, W, out_proj = case.x, case.layers[0].weight, case.layers[3]
    Dh = x.shape[-1] // case.num_heads
    with torch.no_grad():
        attention = torch.softmax(x @ W.T / math.sqrt(Dh), dim=1)  # (B, T, D), over the tokens
        return out_proj(attention @ W)  # (B, T, D) @ (D, D) -> (B, T, D)


_ARTICLE_SUSPECTS = [
    ("this is still the article's Q19 computation: x @ W^T is a feature projection, not "
     "query-key scores. Compute q, k, v with the three projections and scores = q @ k^T per "
     "head, (B, H, T, T)", _article_q19),
    ("Q = K = V = one weight matrix (without its bias), as in the article (C19-1): use "
     "q_proj(x), k_proj(x) and v_proj(x)", dict(shared="weight")),
]  # fmt: skip


def check_article_attention_fix(fn: Callable) -> None:
    """Check the learner's fix of the article's Q19/Q20 ``multi_head_attention`` code.

    The fixed function must take its weights instead of creating ``nn.Linear`` layers inside
    (bug C19-6), and is called as
    ``fn(x, q_proj, k_proj, v_proj, out_proj, num_heads, dropout=p, training=flag)``, where
    the four layers are ``nn.Linear(D, D)`` (W^Q, W^K, W^V, W^O). It returns ``out`` or
    ``(out, weights)``; with ``training=True`` and ``dropout > 0`` it must return
    ``(out, weights)``, the weights after dropout. With ``training=False`` it must equal
    ``MultiHeadAttention`` with the same weights, also on the article's own call (32, 64, 512)
    with 8 heads, and two calls must agree. With ``training=True`` and ``dropout=0.5`` (and an
    identity ``out_proj``), every returned weight must be 0 or the reference weight divided by
    ``1 - p``, 30-70% of them 0, and ``out`` must be ``merge(weights @ v_proj(x))`` for the
    returned weights. Masks are not part of the contract (the article has none, C19-8).

    Args:
        fn: the fixed function.

    Shapes:
        x ``(B, T, D)`` -> out ``(B, T, D)``.

    Introduced in chapter 04 (exercise ex-04-bug-hunt).
    """
    name = "check_article_attention_fix"
    gen = _generator()
    cases = [
        (_mha_case(gen, "x (2, 7, 24), 3 heads, dropout=0.1, training=False", 2, 7, 24, 3), 0.1),
        (_mha_case(gen, "x (3, 5, 32), 8 heads, dropout=0.0, training=False", 3, 5, 32, 8), 0.0),
        (_mha_case(gen, "the article's call: x (32, 64, 512), 8 heads, dropout=0.1, "
                   "training=False", 32, 64, 512, 8), 0.1),
    ]  # fmt: skip
    for case, p in cases:
        run = functools.partial(fn, dropout=p, training=False)
        first, second = (
            _call(name, case.description, run, case.x, *_fresh_layers(case), case.num_heads)
            for _ in range(2)
        )
        if not _same(first, second):
            off = functools.partial(fn, dropout=0.0, training=False)
            a, b = (off(case.x, *_fresh_layers(case), case.num_heads) for _ in range(2))
            msg = (
                "two calls with the same weights and input differ: dropout is active with "
                "training=False (C19-7); apply it only when training=True"
                if _same(a, b)
                else "two calls with the same weights and input differ, even with dropout=0.0: "
                "the function creates new random layers (C19-6); use the layers it is given"
            )
            raise _fail(name, case.description, msg)
        _check_mha_output(name, case, first, _ARTICLE_SUSPECTS)
    with torch.random.fork_rng(devices=[]):  # the learner's dropout must not move the seed
        _check_article_dropout(name, gen, fn)
    print(
        f"{name}: all {len(cases) + 1} stages passed (equal to MultiHeadAttention, the article's "
        "shapes, deterministic at inference, dropout on the weights in training)."
    )


def _same(a: object, b: object) -> bool:
    """Whether two results (tensors, or tuples whose first item is the output) are identical."""
    a, b = (r[0] if isinstance(r, tuple | list) else r for r in (a, b))
    return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)


def _check_article_dropout(name: str, gen: torch.Generator, fn: Callable) -> None:
    """Dropout must act in training, on the weights (B, H, T, T) (here with an identity W^O):
    each returned weight 0 or the reference / (1 - p), and ``out`` made from those weights."""
    B, T, D, H = 4, 8, 64, 4  # Dh = 16 >= T: the weights that produced `out` can be read back
    p = 0.5
    case = _mha_case(gen, "", B, T, D, H)
    identity = nn.utils.skip_init(nn.Linear, D, D, dtype=torch.float64)
    with torch.no_grad():
        identity.weight.copy_(torch.eye(D, dtype=torch.float64))
        identity.bias.zero_()
    case.layers = (*case.layers[:3], identity)
    case.description = f"x {(B, T, D)}, {H} heads, out_proj = identity, dropout=0.0, training=True"
    result = _call(name, case.description, fn, case.x, *_fresh_layers(case), H, dropout=0.0,
                   training=True)  # fmt: skip
    _check_mha_output(name, case, result)
    stage = case.description.replace("dropout=0.0", f"dropout={p}")
    result = _call(name, stage, fn, case.x, *_fresh_layers(case), H, dropout=p, training=True)
    if not (isinstance(result, tuple | list) and len(result) == 2
            and all(isinstance(t, torch.Tensor) for t in result)):  # fmt: skip
        raise _fail(name, stage, "with dropout, return (out, weights): the attention weights "
                    "after dropout, (B, H, T, T), the ones multiplied by v, so that the checker "
                    "can see where the dropout went")  # fmt: skip
    out, weights = (t.detach() for t in result)
    if out.shape != (B, T, D) or weights.shape != (B, H, T, T):
        got = f"got {tuple(out.shape)} and {tuple(weights.shape)}"
        raise _fail(name, stage, f"expected out (B, T, D) = {(B, T, D)} and weights (B, H, T, "
                    f"T) = {(B, H, T, T)}, {got}")  # fmt: skip
    problem = _diagnose_dropout(case, out.to(torch.float64), weights.to(torch.float64), p)
    if problem is not None:
        raise _fail(name, stage, problem)


def _is_dropout_of(got: torch.Tensor, ref: torch.Tensor, p: float) -> bool:
    """Whether ``got`` is ``ref`` with 20-80% of its entries zeroed and the rest / (1 - p)."""
    zero = torch.isclose(got, torch.zeros_like(got), rtol=0, atol=1e-6)
    kept = torch.isclose(got, ref / (1 - p), rtol=1e-5, atol=1e-6)
    return bool((zero | kept).all()) and 0.2 < zero.double().mean().item() < 0.8


def _softmax_of_dropped_scores(weights: torch.Tensor, scores: torch.Tensor, p: float) -> bool:
    """Whether ``weights = softmax(dropout(scores))``, scaled by 1/(1-p) or not: each row's
    ``log w_j - c`` is 0 (dropped) or ``s_j * scale`` (kept) for one constant ``c``."""
    if not bool((weights > 0).all()):
        return False
    log_w = weights.log()  # (B, H, T, S)
    for scale in (1 / (1 - p), 1.0):
        dropped, kept = log_w, log_w - scores * scale  # the row constant c, entry by entry
        rows_fit = torch.zeros(weights.shape[:-1], dtype=torch.bool)  # (B, H, T)
        for c in (dropped[..., :1], kept[..., :1]):  # (B, H, T, 1): the two candidates
            fits = torch.isclose(dropped, c, rtol=0, atol=1e-8)
            fits |= torch.isclose(kept, c, rtol=0, atol=1e-8)
            rows_fit |= fits.all(dim=-1)
        if bool(rows_fit.all()):
            return True
    return False


def _diagnose_dropout(case: _MHACase, out, weights, p: float) -> str | None:
    """What is wrong with ``(out, weights)`` as dropout ``p`` on the attention weights."""
    q_proj, k_proj, v_proj, _ = case.layers  # out_proj is the identity here
    x, H = case.x, case.num_heads
    B, T, D = x.shape  # batch, tokens, width
    Dh = D // H  # head width

    def split(t: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, H, T, Dh)
        return t.view(B, T, H, Dh).transpose(1, 2)

    def merge(t: torch.Tensor) -> torch.Tensor:  # (B, H, T, Dh) -> (B, T, D)
        return t.transpose(1, 2).reshape(B, T, D)

    with torch.no_grad():
        q, k, v = split(q_proj(x)), split(k_proj(x)), split(v_proj(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(Dh)  # (B, H, T, T)
        ref_w = torch.softmax(scores, dim=-1)  # (B, H, T, T), before dropout
        if _close(weights, ref_w) and _close(out, merge(ref_w @ v)):
            return f"dropout is not applied when training=True and dropout={p}"
        if not _close(out, merge(weights @ v)):
            return _diagnose_inconsistent(case, out, weights, ref_w, v, p)
        kept = weights != 0
        if not bool(kept.any()):
            return f"every weight is 0 with dropout={p}: drop each weight with probability p"
        ratio = weights[kept] / ref_w[kept]  # the factor of every kept weight
        factor = ratio.median().item()
        if not torch.allclose(ratio, torch.full_like(ratio, factor), rtol=1e-5, atol=1e-8):
            if _softmax_of_dropped_scores(weights, scores, p):
                return ("dropout is applied to the scores before the softmax: a zeroed score is "
                        "not a removed key (e^0 = 1), and the rows are renormalised; apply dropout "
                        "to softmax(scores), the weights (B, H, T, T)")  # fmt: skip
            return (
                "the weights are not the softmax weights with some set to 0 and the others "
                f"divided by 1 - p: apply dropout once, to softmax(scores), with p={p}"
            )
        if abs(factor - 1.0) < 1e-6:
            return (
                "the kept weights are not rescaled: inverted dropout divides them by 1 - p "
                f"(= {1 - p:g}) so that their expected value is unchanged; F.dropout(weights, p, "
                "training) does it for you"
            )
        if abs(factor - 1 / (1 - p)) > 1e-6:
            rate = 1 - 1 / factor
            return (
                f"the kept weights are multiplied by {factor:.4g}, the factor of a dropout rate "
                f"of {rate:.3g}, not 1/(1 - p) = {1 / (1 - p):g}: pass p=dropout to F.dropout"
            )
        share = 1 - kept.double().mean().item()
        if not 0.3 <= share <= 0.7:
            return (f"{share:.0%} of the weights are 0 with dropout={p} (expected about {p:.0%}): "
                    "pass p=dropout to F.dropout")  # fmt: skip
    return None


def _diagnose_inconsistent(case: _MHACase, out, weights, ref_w, v, p: float) -> str:
    """Name the mistake when ``out`` is not ``merge(weights @ v)`` for the weights returned."""
    (B, T, D), H = case.x.shape, case.num_heads  # batch, tokens, width; heads
    out_heads = out.view(B, T, H, D // H).transpose(1, 2)  # (B, T, D) -> (B, H, T, Dh)
    zeros = (out == 0).double().mean().item()
    if zeros > 0.2:
        return (f"dropout is applied to the outputs ({zeros:.0%} of them are exactly 0 with an "
                "identity out_proj), not to the attention weights: apply it to the weights "
                "(B, H, T, T) before weights @ v")  # fmt: skip
    used = out_heads @ torch.linalg.pinv(v)  # (B, H, T, T): the weights that produced out
    if _is_dropout_of(used, ref_w, p):
        return (
            "the output uses dropped-out weights, but the weights returned are those from "
            "before dropout: return the weights after dropout, the ones multiplied by v"
        )
    if _is_dropout_of(torch.linalg.solve(ref_w, out_heads), v, p):
        return (
            "dropout is applied to the values v (the output is the weights, undropped, times "
            "v with entries zeroed): apply it to the attention weights (B, H, T, T) instead"
        )
    v_used = torch.linalg.solve(weights, out_heads).transpose(1, 2).reshape(B, T, D)
    v_proj = case.layers[2]
    x_used = torch.linalg.solve(v_proj.weight.T, v_used - v_proj.bias, left=False)  # (B, T, D)
    if _is_dropout_of(x_used, case.x, p):
        return ("dropout is applied to the input x: it changes the queries, keys and values "
                "alike; apply it to the attention weights (B, H, T, T) only")  # fmt: skip
    return ("the output is not out_proj(merge(weights @ v_proj(x))) for the weights you return: "
            "return the weights after dropout and use exactly those for weights @ v")  # fmt: skip
