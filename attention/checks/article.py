"""Checker for chapter 04's bug hunt: the article's Q19/Q20 code, fixed."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from ._common import _call, _close, _fail, _generator
from .multihead import _article_q19, _check_mha_output, _fresh_layers, _mha_case, _mha_variant

_ARTICLE_SUSPECTS = [
    (
        "this is still the article's Q19 computation: x @ W^T is a feature projection, not "
        "query-key scores. Compute q, k, v with the three projections and scores = q @ k^T per "
        "head, (B, H, T, T)",
        _article_q19,
    ),
    (
        "Q = K = V = one weight matrix (without its bias), as in the article (C19-1): use "
        "q_proj(x), k_proj(x) and v_proj(x)",
        dict(shared="weight"),
    ),
]


def check_article_attention_fix(fn: Callable) -> None:
    """Check the learner's fix of the article's Q19/Q20 ``multi_head_attention`` code.

    The fixed function must take its weights instead of creating ``nn.Linear`` layers inside
    (bug C19-6), and is called as
    ``fn(x, q_proj, k_proj, v_proj, out_proj, num_heads, dropout=p, training=flag)``, where
    the four layers are ``nn.Linear(D, D)`` (W^Q, W^K, W^V, W^O). It returns ``out`` or
    ``(out, weights)``. With ``training=False`` it must equal ``MultiHeadAttention`` with the
    same weights, also on the article's own call (32, 64, 512) with 8 heads; two calls must
    agree; with ``training=True`` and ``dropout > 0`` dropout must hit the attention weights,
    not the outputs. Masks are not part of the contract (the article has none, C19-8).

    Args:
        fn: the fixed function.

    Returns:
        None; prints one line when every stage passes.

    Raises:
        AssertionError: naming the stage and the article's bug that is still there.

    Shapes:
        x ``(B, T, D)`` -> out ``(B, T, D)``.

    Introduced in chapter 04 (exercise ex-04-bug-hunt).
    """
    __tracebackhide__ = True  # show the learner the verdict, not the checker's frames
    name = "check_article_attention_fix"
    gen = _generator()
    cases = [
        (_mha_case(gen, "x (2, 7, 24), 3 heads, dropout=0.1, training=False", 2, 7, 24, 3), 0.1),
        (_mha_case(gen, "x (3, 5, 32), 8 heads, dropout=0.0, training=False", 3, 5, 32, 8), 0.0),
        (
            _mha_case(
                gen,
                "the article's call: x (32, 64, 512), 8 heads, dropout=0.1, training=False",
                32,
                64,
                512,
                8,
            ),
            0.1,
        ),
    ]
    for case, p in cases:
        run = functools.partial(fn, dropout=p, training=False)
        first = _call(name, case.description, run, case.x, *_fresh_layers(case), case.num_heads)
        second = _call(name, case.description, run, case.x, *_fresh_layers(case), case.num_heads)
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
    """Dropout must act in training, on the weights (B, H, T, T), with an identity W^O here."""
    B, T, D, H = 4, 16, 32, 4
    case = _mha_case(gen, "", B, T, D, H)
    identity = nn.utils.skip_init(nn.Linear, D, D, dtype=torch.float64)
    with torch.no_grad():
        identity.weight.copy_(torch.eye(D, dtype=torch.float64))
        identity.bias.zero_()
    case.layers = (*case.layers[:3], identity)
    case.description = f"x {(B, T, D)}, {H} heads, out_proj = identity, dropout=0.0, training=True"
    run = functools.partial(fn, dropout=0.0, training=True)
    _check_mha_output(
        name, case, _call(name, case.description, run, case.x, *_fresh_layers(case), H)
    )
    stage = case.description.replace("dropout=0.0", "dropout=0.5")
    run = functools.partial(fn, dropout=0.5, training=True)
    result = _call(name, stage, run, case.x, *_fresh_layers(case), H)
    out = (result[0] if isinstance(result, tuple | list) else result).detach()
    if _close(out, _mha_variant(case)):
        raise _fail(name, stage, "dropout is not applied when training=True and dropout=0.5")
    zeros = (out == 0).double().mean().item()
    if zeros > 0.2:
        raise _fail(
            name,
            stage,
            f"dropout is applied to the outputs ({zeros:.0%} of them are exactly 0 with an "
            "identity out_proj), not to the attention weights: apply it to the weights "
            "(B, H, T, T) before weights @ v",
        )
