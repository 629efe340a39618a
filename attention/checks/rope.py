"""Checker of ``attention.rope.apply_rope`` (chapter 05): rotary position embeddings."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..rope import apply_rope
from ._common import _call, _fail, _generator, _randint, _randn
from .positional import _TOL, _near, _returned_tensor


def _rope(x, *, pairs="interleaved", angles=None, sign=1.0, start=0, exponent="2i", swap=False):
    """RoPE written with deliberate mistakes; ``angles`` is the layout of the angles (float64)."""
    T, D = x.shape[-2:]  # tokens, features
    two_i = torch.arange(0, D, 2, dtype=torch.float64)  # (D/2,)
    power = {"2(i+1)": two_i + 2, "i": two_i / 2, "-2i": -two_i, "none": 0 * two_i + math.inf}
    theta = 10000.0 ** (-power.get(exponent, two_i) / D)  # (D/2,)
    layout = angles or pairs
    theta = theta.repeat_interleave(2) if layout == "interleaved" else theta.repeat(2)  # (D,)
    angle = torch.arange(start, start + T, dtype=torch.float64)[:, None] * theta  # (T, D)
    if pairs == "interleaved":  # partner of x[2i] is x[2i+1]
        partner = torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)
    else:  # partner of x[i] is x[i + D/2]
        partner = torch.cat((-x[..., D // 2 :], x[..., : D // 2]), dim=-1)
    cos, sin = (angle.sin(), angle.cos()) if swap else (angle.cos(), angle.sin())
    return x * cos + sign * partner * sin  # (..., T, D)


# description (used when q and k differ) -> (the mistake's knobs, the advice when both share it)
_ROPE_VARIANTS = {
    "interleaved pairs (x[2i], x[2i+1]), as asked": ({}, ""),
    "half-split pairs (x[i], x[i + D/2])": ({"pairs": "half"},
        "half-split pairs (x[i], x[i + D/2]) are the layout of Hugging Face's LLaMA code "
        "(rotate_half) and GPT-NeoX, attention.apply_rope(x, interleaved=False): a valid RoPE "
        "when q, k and any pretrained weights agree on it, but this exercise, like the RoFormer "
        "paper, rotates neighbours (x[2i], x[2i+1])"),
    "interleaved pairs with angles laid out for half-split pairs": ({"angles": "half"},
        "the pairs are (x[2i], x[2i+1]) but the angles are laid out as cat([θ, θ]), the "
        "half-split layout, so the two entries of a pair turn by different angles: not a "
        "rotation, norms change. Use theta.repeat_interleave(2), or work on x[..., 0::2] and "
        "x[..., 1::2]"),
    "half-split pairs with angles laid out for interleaved pairs": (
        {"pairs": "half", "angles": "interleaved"},
        "the pairs are (x[i], x[i + D/2]) but the angles are laid out with repeat_interleave, the "
        "interleaved layout, so the entries of a pair turn by different angles: not a rotation. "
        "The layouts of the pairs and of the angles must match"),
    "sin and cos swapped": ({"swap": True},
        "sin and cos are swapped: the rotation is (x[2i]·cos - x[2i+1]·sin, x[2i]·sin + "
        "x[2i+1]·cos), so position 0 (angle 0) leaves x unchanged"),
    "a rotation the wrong way (by -m·θ_i)": ({"sign": -1.0},
        "the rotation turns the wrong way (by -m·θ_i): x[2i] gets -x[2i+1]·sin, x[2i+1] gets "
        "+x[2i]·sin"),
    "positions 1..T": ({"start": 1},
        "the positions start at 1; they start at 0, so the first token comes out unchanged"),
    "θ_i = 10000^(-2(i+1)/D)": ({"exponent": "2(i+1)"},
        "off-by-one in the exponent: θ_i = 10000^(-2i/D) for i = 0 .. D/2-1, so the first pair "
        "turns by exactly m radians"),
    "θ_i = 10000^(-i/D)": ({"exponent": "i"},
        "the exponent misses its factor 2: θ_i = 10000^(-2i/D), not 10000^(-i/D)"),
    "θ_i = 10000^(+2i/D)": ({"exponent": "-2i"},
        "the exponent's sign is flipped: θ_i = 10000^(-2i/D) <= 1, slower for later pairs"),
    "no rotation at all": ({"exponent": "none"}, "q and k come back unrotated"),
}  # fmt: skip
_OK = next(iter(_ROPE_VARIANTS))


def _identify(x: torch.Tensor, out: torch.Tensor) -> str | None:
    for description, (knobs, _) in _ROPE_VARIANTS.items():
        if _near(out, _rope(x, **knobs)):
            return description
    return None


def _rope_property_report(fn: Callable, name: str) -> str:
    """Measure what a learner's unrecognised RoPE breaks: position 0, norms, relativity."""
    gen = _generator()
    T, D = 8, 8
    q, k = _randn(gen, 1, D).expand(T, D), _randn(gen, 1, D).expand(T, D)  # same vector at all T
    out = _call(name, "the property test", fn, q.clone(), k.clone())
    if not isinstance(out, tuple | list) or len(out) != 2:
        return "it does not return (q_rotated, k_rotated)"
    qr, kr = (_returned_tensor(name, "the property test", t) for t in out)
    scores = qr @ kr.T  # (T, T): <rope(q, m), rope(k, n)>
    spread = max(float(scores.diagonal(d).std()) for d in range(-T + 2, T - 1))
    broken = [
        claim
        for claim, holds in [
            ("position 0 must come out unchanged", _near(qr[0], q[0])),
            ("norms must be preserved (a rotation)", _near(qr.norm(dim=-1), q.norm(dim=-1))),
            (f"<rope(q, m), rope(k, n)> must depend on m - n only (spread at fixed m - n: "
             f"{spread:.2g})", spread < _TOL),
        ]
        if not holds
    ]  # fmt: skip
    if not broken:
        return ("your function is a rotary embedding (position 0 unchanged, norms kept, scores "
                "relative), but its angles are not m·θ_i with θ_i = 10000^(-2i/D): check the base "
                "and the exponent")  # fmt: skip
    return "the output is not the expected rotation: " + "; ".join(broken)


def check_rope(fn: Callable) -> None:
    """Check a learner's rotary position embedding of queries and keys on fresh random cases.

    Args:
        fn: called as ``fn(q, k)`` with float64 tensors whose tokens sit at positions
            ``0 .. T-1``; returns ``(q_rotated, k_rotated)`` with the paper's interleaved pairs
            ``(x[2i], x[2i+1])`` rotated by ``m·θ_i``, ``θ_i = 10000^(-2i/D)``.

    Shapes:
        q, k ``(..., T, D)`` -> the same shapes.

    Introduced in chapter 05 (exercise ex-05-rope).
    """
    name = "check_rope"
    gen = _generator()
    shapes = [(2, 6, 8), (2, 3, 5, 16), (_randint(gen, 7, 13), 4)]
    for shape in shapes:
        case = f"q and k of shape {shape}"
        q, k = _randn(gen, *shape), _randn(gen, *shape)
        out = _call(name, case, fn, q.clone(), k.clone())
        if not isinstance(out, tuple | list) or len(out) != 2:
            raise _fail(name, case, "return the pair (q_rotated, k_rotated)")
        qr, kr = (_returned_tensor(name, case, t) for t in out)
        if qr.shape != q.shape or kr.shape != k.shape:
            shapes = f"{tuple(qr.shape)}, {tuple(kr.shape)}"
            raise _fail(name, case, f"shapes {shapes}; expected {shape}")
        if _near(qr, apply_rope(q)) and _near(kr, apply_rope(k)):
            continue
        got_q, got_k = _identify(q, qr), _identify(k, kr)
        if got_q and got_k and got_q != got_k:
            message = (
                f"q and k are rotated differently: q with {got_q}, k with {got_k}. "
                "<rope(q, m), rope(k, n)> then depends on the absolute positions, not only on "
                "m - n: rotate both with one function"
            )
        elif got_q is not None and got_q != _OK and got_q == got_k:
            message = _ROPE_VARIANTS[got_q][1]
        elif _OK in (got_q, got_k):
            message = f"{'k' if got_q == _OK else 'q'} is not rotated like the other one"
        else:
            message = _rope_property_report(fn, name)
        raise _fail(name, case, message)
    print(
        f"{name}: all {len(shapes)} random cases passed (batched, with heads, unbatched); "
        "q and k rotate alike and their scores depend only on m - n."
    )
