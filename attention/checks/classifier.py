"""Checkers of ``attention.classifier`` (chapter 12): mean pooling over the real tokens."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..classifier import mean_pool
from ._common import _call, _close, _fail, _first_match, _generator, _randn, _tensor


def _pool_suspects(x: torch.Tensor, mask: torch.Tensor) -> list:
    m = mask.to(x.dtype)[..., None]  # (B, S, 1)
    S = x.shape[1]
    return [
        ("the padding is averaged in: leave out the positions where mask is False",
         lambda: x.mean(1)),
        ("the sum of the real tokens is divided by the padded length S; divide by the number "
         "of real tokens, mask.sum(dim=1)", lambda: (x * m).sum(1) / S),
        ("that is the sum of the real tokens; divide it by their number",
         lambda: (x * m).sum(1)),
        ("that is the vector at position 0 (the [CLS] readout), not the mean",
         lambda: x[:, 0]),
        ("the mask polarity is inverted: True marks a real token, whose vector is averaged",
         lambda: (x * (1 - m)).sum(1) / (1 - m).sum(1).clamp(min=1)),
    ]  # fmt: skip


def check_mean_pool(fn: Callable) -> None:
    """Check a learner's mean pooling over the real tokens, with and without an empty row.

    Args:
        fn: called as ``fn(x, mask)`` with float64 ``x (B, S, D)`` and a bool ``mask (B, S)``,
            True = a real token; returns ``(B, D)``, zeros for a row with no real token.

    Introduced in chapter 12 (exercise ex-12-mean-pool).
    """
    name, gen = "check_mean_pool", _generator()
    B, S, D = 3, 8, 5  # batch, tokens, width
    cases = [  # the first description is fixed: the stub's stored output shows it
        (f"x ({B}, {S}, {D}), padding in every row", torch.randint(1, S, (B,), generator=gen)),
        (f"x ({B}, {S}, {D}) with [4, 0, 2] real tokens (a row of padding only)",
         torch.tensor([4, 0, 2])),
    ]  # fmt: skip
    for i, (case, n_real) in enumerate(cases):
        x = _randn(gen, B, S, D)
        mask = torch.arange(S) < n_real[:, None]  # (B, S)
        ref = mean_pool(x, mask)
        got = _call(name, case, fn, x.clone(), mask.clone())
        hint = ""
        if getattr(got, "shape", None) == (B, S):
            hint = " (that is a mean over the features, dim=-1; average over the tokens, dim=1)"
        got = _tensor(name, case, got, (B, D), hint)
        if i == 1 and not torch.isfinite(got[1]).all():
            message = ("a row with no real token gives NaN (0 / 0): divide by the number of real "
                       "tokens clamped to at least 1, so that it gives zeros")  # fmt: skip
            raise _fail(name, case, message)
        if not _close(got, ref):
            diagnosis = _first_match(got, _pool_suspects(x, mask), lambda: None, right=ref)
            raise _fail(name, case, diagnosis or f"the result differs from the mean of the real "
                        f"tokens by up to {(got - ref).abs().max():.3g}")  # fmt: skip
    print(f"{name}: all {len(cases)} random batches passed (padding, a row of padding only).")
