"""Checkers of ``attention.alignment`` (chapter 12): reading the alignment from attention maps."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..alignment import cross_attention_alignment
from ._common import _call, _fail, _first_match, _generator, _randn


def _random_maps(gen: torch.Generator, N: int, B: int, H: int, T: int, S: int) -> dict:
    """Attention maps shaped like ``Transformer.attention_maps``: softmax rows of random
    logits, spread enough that every choice of map, layer, head or axis gives other indices."""

    def softmax(*shape: int) -> torch.Tensor:
        return torch.softmax(_randn(gen, *shape, std=3.0), dim=-1)

    return {
        "encoder": softmax(N, B, H, S, S),
        "decoder_self": softmax(N, B, H, T, T).tril(),  # causal rows (not renormalised: fine)
        "cross": softmax(N, B, H, T, S),
    }


def _alignment_suspects(maps: dict) -> list:
    cross, last = maps["cross"], maps["cross"][-1]  # (N, B, H, T, S), (B, H, T, S)
    return [
        ("you read the encoder's self-attention: it maps source tokens to source tokens and "
         "has no target axis; the alignment is in maps['cross']",
         lambda: maps["encoder"][-1].mean(1).argmax(-1)),
        ("you read the decoder's self-attention: it relates target positions to earlier "
         "target positions, not to the source; the alignment is in maps['cross']",
         lambda: maps["decoder_self"][-1].mean(1).argmax(-1)),
        ("you read the first decoder layer; take the last one, maps['cross'][-1]",
         lambda: cross[0].mean(1).argmax(-1)),
        ("you averaged over the layers too; take the last layer alone, maps['cross'][-1]",
         lambda: cross.mean((0, 2)).argmax(-1)),
        ("you took, for each position, the largest weight of any head; average the heads "
         "first (dim=1 of maps['cross'][-1])", lambda: last.amax(1).argmax(-1)),
        ("you used one head; average all heads (dim=1 of maps['cross'][-1])",
         lambda: last[:, 0].argmax(-1)),
        ("the argmax runs over the target axis; it must run over the source axis (dim=-1), "
         "one source index for each target position", lambda: last.mean(1).argmax(-2)),
    ]  # fmt: skip


def check_alignment(fn: Callable) -> None:
    """Check a learner's reading of the alignment from a Transformer's attention maps.

    Args:
        fn: called as ``fn(maps)`` with a dict like ``Transformer.attention_maps``'s
            (``"encoder"``, ``"decoder_self"``, ``"cross"``), of random maps with T != S;
            returns a ``(B, T)`` tensor of source indices: the argmax over the source of the
            last layer's cross-attention, averaged over the heads.

    Introduced in chapter 12 (exercise ex-12-alignment).
    """
    name = "check_alignment"
    gen = _generator()
    sizes = [(2, 3, 4, 5, 7), (3, 2, 2, 6, 4)]  # N layers, B, H heads, T, S
    for N, B, H, T, S in sizes:
        case = f"maps of {N} layers, batch {B}, {H} heads, T = {T}, S = {S}"
        maps = _random_maps(gen, N, B, H, T, S)
        ref = cross_attention_alignment(maps)  # (B, T)
        got = _call(name, case, fn, {k: v.clone() for k, v in maps.items()})
        if not isinstance(got, torch.Tensor):
            raise _fail(
                name, case, f"expected a tensor of indices (B, T), got {type(got).__name__}"
            )
        if got.is_floating_point() and got.shape == (B, T, S):
            raise _fail(name, case, "you returned the averaged weights (B, T, S); return the "
                        "index of the largest weight of each row, .argmax(dim=-1)")  # fmt: skip
        got = got.detach().long() if not got.is_floating_point() else got.detach()
        if got.is_floating_point() and not torch.equal(got, got.round()):
            raise _fail(name, case, "expected whole source indices, got fractions")
        got = got.long()
        if torch.equal(got, ref):
            continue

        def same(a: torch.Tensor, b: torch.Tensor) -> bool:
            return a.shape == b.shape and torch.equal(a, b)

        diagnosis = _first_match(got, _alignment_suspects(maps), lambda: None, close=same)
        if diagnosis is None and got.shape != (B, T):
            diagnosis = (f"wrong shape {tuple(got.shape)}: return one source index per target "
                         f"position, (B, T) = {(B, T)}")  # fmt: skip
        raise _fail(name, case, diagnosis or "the indices differ from the argmax over the "
                    "source of maps['cross'][-1] averaged over the heads")  # fmt: skip
    print(f"{name}: all {len(sizes)} random sets of maps passed (T != S, several layers, heads).")
