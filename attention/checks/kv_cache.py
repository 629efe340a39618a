"""Checker of ``attention.kv_cache`` (chapter 08): one decoding step with a key/value cache."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core import scaled_dot_product_attention
from ..masks import causal_mask
from ._common import CheckFailed, _call, _close, _fail, _first_match, _generator, _randn, _tensor


@dataclass
class _StepCase:
    """One decoding step: the new token's q, k, v ``(B, H, 1, Dh)`` and a cache of ``P`` tokens."""

    description: str
    q: torch.Tensor
    k_new: torch.Tensor
    v_new: torch.Tensor
    k_cache: torch.Tensor
    v_cache: torch.Tensor


def _step_case(gen: torch.Generator, description: str, B: int, H: int, P: int, Dh: int):
    """Scores of std ~1.5 after scaling, so that a wrong scale changes the weights visibly."""
    std = 1.5 * Dh**-0.25  # q.k / sqrt(Dh) then has std 1.5
    sizes = ((1, std), (1, std), (1, 1.0), (P, std), (P, 1.0))  # q, k_new, v_new, k/v_cache
    return _StepCase(description, *(_randn(gen, B, H, n, Dh, std=sd) for n, sd in sizes))


def _reference(case: _StepCase) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The right step: append, then attend with the single query to every key (no mask)."""
    k = torch.cat([case.k_cache, case.k_new], dim=2)  # (B, H, P, Dh) -> (B, H, P + 1, Dh)
    v = torch.cat([case.v_cache, case.v_new], dim=2)  # (B, H, P, Dh) -> (B, H, P + 1, Dh)
    return scaled_dot_product_attention(case.q, k, v)[0], k, v  # (B, H, 1, Dh)


def _attend(q, k, v, *, scale: float, mask=None, dim: int = -1, softmax: bool = True):
    """Attention with the knobs of the usual mistakes; rows with no key give 0."""
    scores = q @ k.transpose(-2, -1) * scale  # (B, H, 1, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    if scores.shape[-1] == 0:  # no key at all: nothing to average
        return torch.zeros_like(q)
    weights = torch.softmax(scores, dim=dim) if softmax else scores
    return weights @ v  # (B, H, 1, S) @ (B, H, S, Dh) -> (B, H, 1, Dh)


def _out_mistakes(case: _StepCase) -> list[tuple[str, torch.Tensor]]:
    """The output of each usual mistake, with its diagnosis, most specific first."""
    _, k, v = _reference(case)
    S, Dh, P = k.shape[2], k.shape[3], case.k_cache.shape[2]  # keys, head width, cached
    ok = 1.0 / math.sqrt(Dh)
    top_left = torch.ones(1, S, dtype=torch.bool).tril()  # (1, S): key 0 only
    found = [
        ("only the first key is attended: a causal mask built for one query, "
         "torch.ones(1, S).tril() (or is_causal=True in F.scaled_dot_product_attention), "
         "is aligned to the top left and keeps key 0 alone. The new token is the last one, "
         "so it may attend to every cached key: use no mask for a single new query (or "
         "align it to the bottom right, tril(diagonal=S - 1))",
         _attend(case.q, k, v, scale=ok, mask=top_left)),
        ("the query attends to the old cache only: append the new key and value first, "
         "then attend, so that the new token also attends to itself",
         _attend(case.q, case.k_cache, case.v_cache, scale=ok)),
        ("the query attends only to its own key: the earlier tokens' keys and values come "
         "from the cache, torch.cat([k_cache, k_new], dim=2)",
         _attend(case.q, case.k_new, case.v_new, scale=ok)),
        (f"the scores are scaled by 1/sqrt(S) with S = {S} cached keys: the scale is "
         f"1/sqrt(Dh) with Dh = {Dh} the head width, whatever the length of the cache",
         _attend(case.q, k, v, scale=1.0 / math.sqrt(S))),
        ("the scores are scaled by 1/S (the cache length): the scale is 1/sqrt(Dh), "
         "the head width", _attend(case.q, k, v, scale=1.0 / S)),
        ("the scores are not scaled: multiply q @ k^T by 1/sqrt(Dh)",
         _attend(case.q, k, v, scale=1.0)),
        ("the scores are scaled by 1/Dh; the right factor is 1/sqrt(Dh)",
         _attend(case.q, k, v, scale=1.0 / Dh)),
        ("the softmax runs over the queries (dim=-2): with one query every weight is then 1; "
         "normalise over the keys, dim=-1", _attend(case.q, k, v, scale=ok, dim=-2)),
        ("there is no softmax: turn the scores into weights with softmax(dim=-1)",
         _attend(case.q, k, v, scale=ok, softmax=False)),
    ]  # fmt: skip
    if P > 0:
        found.insert(
            4,
            (f"the scores are scaled by 1/sqrt(P) with P = {P}, the length of the old cache: "
             f"the scale is 1/sqrt(Dh) with Dh = {Dh}, the head width",
             _attend(case.q, k, v, scale=1.0 / math.sqrt(P))),
        )  # fmt: skip
    return found


def _diagnose_out(case: _StepCase, out: torch.Tensor, ref: torch.Tensor) -> str:
    return _first_match(out, _out_mistakes(case), None, right=ref) or (
        f"the output differs from the reference by up to {(out - ref).abs().max():.3g}; "
        "check, in order: append k_new and v_new to the caches along dim=2, scores = q @ "
        "k.transpose(-2, -1) / sqrt(Dh), no mask, softmax over dim=-1, then weights @ v"
    )


def _diagnose_cache(case: _StepCase, name: str, got: object, want: torch.Tensor) -> str | None:
    """What is wrong with the returned ``k_cache`` or ``v_cache`` (None if it is right)."""
    old, new = (case.k_cache, case.k_new) if name == "k_cache" else (case.v_cache, case.v_new)
    other_new = case.v_new if name == "k_cache" else case.k_new
    if not isinstance(got, torch.Tensor):
        return f"the returned {name} is a {type(got).__name__}, not a tensor"
    stale, wrong_shape = got.shape == old.shape and _close(got, old), got.shape != want.shape
    problems = [
        (stale, f"the returned {name} is the old cache: return the extended cache "
         f"{tuple(want.shape)} = (B, H, P + 1, Dh), so that the next step sees this token"),
        (wrong_shape, f"the returned {name} has shape {tuple(got.shape)}, expected "
         f"{tuple(want.shape)} = (B, H, P + 1, Dh): concatenate along the sequence axis, dim=2"),
        (not wrong_shape and _close(got, torch.cat([new, old], dim=2)) and not _close(got, want),
         f"the new entry is put first in {name}: append it at the end, torch.cat([{name}, "
         f"{name[0]}_new], dim=2), so that token i stays at position i of the cache"),
        (not wrong_shape and _close(got[:, :, -1:], other_new),
         "k_cache and v_cache are swapped: return (out, k_cache, v_cache) in that order"),
        (not _close(got, want), f"the returned {name} is not the old cache followed by the new "
         "entry"),
    ]  # fmt: skip
    return next((message for applies, message in problems if applies), None)


def _explain_error(message: str) -> str:
    """Add a hint to an exception from torch.cat along the wrong dim."""
    found = re.search(r"Sizes of tensors must match except in dimension (-?\d+)", message)
    if found and found.group(1) != "2":
        return (
            f"{message}\n  (a torch.cat along dim={found.group(1)}: the cache is (B, H, S, Dh), "
            "so the new token joins it along the sequence axis, dim=2)"
        )
    return message


def _run(name: str, case: _StepCase, fn: Callable):
    """Call the learner's step on copies of the inputs; unpack and shape-check the result."""
    inputs = (case.q, case.k_new, case.v_new, case.k_cache, case.v_cache)
    try:
        result = _call(name, case.description, fn, *(t.clone() for t in inputs))
    except CheckFailed as err:
        raise CheckFailed(_explain_error(str(err))) from None
    if not isinstance(result, tuple | list) or len(result) != 3:
        items = f" of {len(result)} items" if isinstance(result, tuple | list) else ""
        got = f"a {type(result).__name__}{items}"
        raise _fail(name, case.description, f"expected (out, k_cache, v_cache), got {got}")
    return result


def _check_step(name: str, case: _StepCase, fn: Callable) -> None:
    out, k_cache, v_cache = _run(name, case, fn)
    ref, ref_k, ref_v = _reference(case)
    hint = ""
    if tuple(getattr(out, "shape", (0,)))[-1:] in ((ref_k.shape[2],), (case.k_cache.shape[2],)):
        hint = " (that is the weights' shape: return weights @ v)"
    nonfinite = ("out contains NaN or inf: a query whose keys are all masked gets softmax of "
                 "all -inf = NaN; the single new query may attend to every key, so it needs no "
                 "mask")  # fmt: skip
    out = _tensor(
        name, case.description, out, ref.shape, f" = (B, H, 1, Dh){hint}", nonfinite=nonfinite
    )
    if not _close(out, ref):
        raise _fail(name, case.description, _diagnose_out(case, out, ref))
    for cache_name, got, want in (("k_cache", k_cache, ref_k), ("v_cache", v_cache, ref_v)):
        problem = _diagnose_cache(case, cache_name, got, want)
        if problem is not None:
            raise _fail(name, case.description, problem)


def _check_decode(name: str, gen: torch.Generator, fn: Callable, B: int, H: int, T: int, Dh: int):
    """Decode T tokens one by one from an empty cache; compare with causal attention."""
    description = f"a {T}-step decode from an empty cache, compared with causal attention"
    std = 1.5 * Dh**-0.25
    q, k, v = (_randn(gen, B, H, T, Dh, std=sd) for sd in (std, std, 1.0))
    k_cache = v_cache = torch.zeros(B, H, 0, Dh, dtype=torch.float64)
    outs = []
    for t in range(T):
        step = _StepCase(description, *(x[:, :, t : t + 1] for x in (q, k, v)), k_cache, v_cache)
        out, k_cache, v_cache = _run(name, step, fn)
        outs.append(out)
    ref = scaled_dot_product_attention(q, k, v, causal_mask(T))[0]  # (B, H, T, Dh)
    got = torch.cat(outs, dim=2)
    if not _close(got, ref):
        bad = next(t for t in range(T) if not _close(got[:, :, t], ref[:, :, t]))
        raise _fail(name, description, f"the step-by-step outputs differ from causal attention "
                    f"over the whole sequence (first at step {bad}): each step must use the "
                    "cache it is given and return it extended by one token")  # fmt: skip


def check_cached_attention_step(fn: Callable) -> None:
    """Check a learner's single decoding step of attention with a key/value cache.

    The checker tries caches of several lengths, ``S != Dh``, then decodes a sequence step by
    step from an empty cache and compares it with causal attention over the whole sequence.

    Args:
        fn: ``fn(q, k_new, v_new, k_cache, v_cache)`` gets the new token's query, key and
            value and the cached keys and values of the ``P`` earlier tokens (float64, ``P``
            may be 0); returns ``(out, k_cache, v_cache)``: the new token's attention output
            and the caches extended by its key and value.

    Shapes:
        q, k_new, v_new ``(B, H, 1, Dh)``, k_cache, v_cache ``(B, H, P, Dh)`` -> out
        ``(B, H, 1, Dh)``, k_cache, v_cache ``(B, H, P + 1, Dh)``.

    Introduced in chapter 08 (exercise ex-08-cached-step).
    """
    name = "check_cached_attention_step"
    gen = _generator()
    cases = [
        _step_case(gen, "a cache of 5 tokens, q (2, 4, 1, 16)", 2, 4, 5, 16),
        _step_case(gen, "the first step: an empty cache (2, 3, 0, 8)", 2, 3, 0, 8),
        _step_case(gen, "a cache of 11 tokens, q (1, 2, 1, 8)", 1, 2, 11, 8),
    ]
    for case in cases:
        _check_step(name, case, fn)
    _check_decode(name, gen, fn, B=2, H=2, T=7, Dh=8)
    print(
        f"{name}: all {len(cases) + 1} cases passed (caches of 5, 0 and 11 tokens, and a "
        "7-step decode equal to causal attention)."
    )
