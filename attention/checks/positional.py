"""Checkers for chapter 05: the sinusoidal encoding, RoPE and the ALiBi bias."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..positional import alibi_bias, apply_rope, sinusoidal_positional_encoding
from ._common import _call, _fail, _generator, _randn

# A learner may compute angles in float32: positions up to ~100 then cost up to ~1e-5. Every
# mistake diagnosed below changes some entry by far more than this.
_TOL = 1e-4


def _near(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether a equals b up to _TOL where b is not NaN (NaN: a float32 value is unreliable)."""
    if a.shape != b.shape:
        return False
    known = ~b.isnan()
    return bool(known.any()) and bool((a.double() - b)[known].abs().max() <= _TOL)


def _randint(gen: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high, (1,), generator=gen))


def _returned_tensor(name: str, case: str, out: object) -> torch.Tensor:
    """The learner's result as a float64 tensor, or a failure saying what came back instead."""
    __tracebackhide__ = True
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        got = f"a {out.dtype} tensor" if isinstance(out, torch.Tensor) else type(out).__name__
        raise _fail(name, case, f"expected a floating-point torch.Tensor, got {got}")
    return out.detach().to("cpu", torch.float64)


# ----------------------------------------------------------------------------- sinusoidal


def _sinusoid(L: int, D: int, *, start=0, exponent="2i", op="divide", swap=False, half=False):
    """The sinusoidal table written with one deliberate mistake (float64)."""
    p = torch.arange(start, start + L, dtype=torch.float64)[:, None]  # (L, 1)
    two_i = torch.arange(0, D, 2, dtype=torch.float64)  # (D/2,)
    power = {"2(i+1)": two_i + 2, "4i": 2 * two_i, "i": two_i / 2}.get(exponent, two_i)
    freq = 10000.0 ** (-power / D) if op == "divide" else 10000.0 ** (power / D)  # (D/2,)
    if op == "sqrt":  # the article's prose: one frequency, 1/sqrt(D), for every pair
        freq = torch.full_like(two_i, 1 / math.sqrt(D))
    angle = p * freq  # (L, D/2)
    # float32 cannot hold large angles precisely: compare only the entries a learner can get right
    angle = angle.where(angle.abs() < 500, math.nan)
    first, second = angle.sin(), angle.cos()  # (L, D/2) each
    if swap:
        first, second = second, first
    if half:
        return torch.cat((first, second), dim=-1)  # (L, D): all sines, then all cosines
    pe = torch.stack((first, second), dim=-1).flatten(-2)  # (L, D/2, 2) -> (L, D)
    if exponent == "column":  # cos columns use their own index 2i+1 in the exponent
        pe[:, 1::2] = (p * 10000.0 ** (-(two_i + 1) / D)).cos()
    return pe


_SINUSOID_MISTAKES = [
    (
        "sin and cos are swapped: even columns 2i hold sin, odd columns 2i+1 hold cos",
        {"swap": True},
    ),
    (
        "positions start at 1; they start at 0 (row 0 is [0, 1, 0, 1, ...]), as in the "
        "article's own code, whatever its prose says",
        {"start": 1},
    ),
    (
        "off-by-one in the exponent: 10000^(2(i+1)/d_model); the pair (2i, 2i+1) uses "
        "10000^(2i/d_model), so the first pair has frequency 1",
        {"exponent": "2(i+1)"},
    ),
    (
        "the exponent is doubled: torch.arange(0, d_model, 2) already gives 2i, so do not "
        "multiply it by 2 again",
        {"exponent": "4i"},
    ),
    (
        "the exponent misses its factor 2: use 10000^(2i/d_model), not 10000^(i/d_model)",
        {"exponent": "i"},
    ),
    (
        "the cos column 2i+1 uses 10000^((2i+1)/d_model); both columns of a pair share the "
        "frequency 10000^(-2i/d_model)",
        {"exponent": "column"},
    ),
    ("the position is multiplied by 10000^(2i/d_model); divide by it instead", {"op": "multiply"}),
    (
        "this is the article's prose formula sin(p/sqrt(d)), cos(p/sqrt(d)): one frequency for "
        "every pair, so positions 142 apart (d=512) look alike; use 10000^(2i/d_model)",
        {"op": "sqrt"},
    ),
    (
        "all sines come first and all cosines second (the tensor2tensor layout); the paper's "
        "formula interleaves them: sin in column 2i, cos in column 2i+1",
        {"half": True},
    ),
]


def check_sinusoidal_positional_encoding(fn: Callable) -> None:
    """Check a learner's sinusoidal positional encoding on fresh random sizes.

    Args:
        fn: called as ``fn(max_len, d_model)`` with ints (``d_model`` even); returns the table.

    Returns:
        None; prints one line when every case passes.

    Raises:
        AssertionError: naming the case and the likely mistake.

    Shapes:
        -> ``(max_len, d_model)``.

    Introduced in chapter 05 (exercise ex-05-sinusoidal).
    """
    __tracebackhide__ = True  # show the learner the verdict, not the checker's frames
    name = "check_sinusoidal_positional_encoding"
    gen = _generator()
    sizes = [
        (50, 32),  # most mistakes show here (fixed, so a failure message is reproducible)
        (_randint(gen, 60, 100), 2 * _randint(gen, 4, 33)),  # long: float32 rounding matters
        (_randint(gen, 2, 9), 2),  # the smallest table: one (sin, cos) pair
    ]
    for L, D in sizes:
        case = f"max_len={L}, d_model={D}"
        pe = _returned_tensor(name, case, _call(name, case, fn, L, D))
        ref = sinusoidal_positional_encoding(L, D, dtype=torch.float64)
        if pe.shape != ref.shape:
            hint = ""
            if pe.shape == (1, L, D):
                hint = " (drop the batch dim that the article's code adds with unsqueeze(0))"
            elif pe.shape == (D, L):
                hint = " (rows are positions, columns are features)"
            raise _fail(name, case, f"shape {tuple(pe.shape)}, expected ({L}, {D}){hint}")
        if _near(pe, ref):
            continue
        for message, knobs in _SINUSOID_MISTAKES:
            if _near(pe, _sinusoid(L, D, **knobs)):
                raise _fail(name, case, message)
        row = int(((pe - ref).abs().amax(dim=-1) > _TOL).nonzero()[0])
        raise _fail(
            name,
            case,
            f"the table differs from PE[p, 2i] = sin(p / 10000^(2i/d_model)), PE[p, 2i+1] = "
            f"cos(same) by up to {(pe - ref).abs().max():.3g}, first at position {row}",
        )
    print(f"{name}: all {len(sizes)} random sizes match the formula of Vaswani et al. (2017).")


# ----------------------------------------------------------------------------- RoPE


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
    "half-split pairs (x[i], x[i + D/2])": (
        {"pairs": "half"},
        "half-split pairs (x[i], x[i + D/2]) are the layout of Hugging Face's LLaMA code "
        "(rotate_half): a valid RoPE when q, k and any pretrained weights agree on it, but this "
        "exercise, like the RoFormer paper, rotates neighbours (x[2i], x[2i+1])",
    ),
    "interleaved pairs with angles laid out for half-split pairs": (
        {"angles": "half"},
        "the pairs are (x[2i], x[2i+1]) but the angles are laid out as cat([θ, θ]), the "
        "half-split layout, so the two entries of a pair turn by different angles: not a "
        "rotation, norms change. Use theta.repeat_interleave(2), or work on x[..., 0::2] and "
        "x[..., 1::2]",
    ),
    "half-split pairs with angles laid out for interleaved pairs": (
        {"pairs": "half", "angles": "interleaved"},
        "the pairs are (x[i], x[i + D/2]) but the angles are laid out with repeat_interleave, the "
        "interleaved layout, so the entries of a pair turn by different angles: not a rotation. "
        "The layouts of the pairs and of the angles must match",
    ),
    "sin and cos swapped": (
        {"swap": True},
        "sin and cos are swapped: the rotation is (x[2i]·cos - x[2i+1]·sin, x[2i]·sin + "
        "x[2i+1]·cos), so position 0 (angle 0) leaves x unchanged",
    ),
    "a rotation the wrong way (by -m·θ_i)": (
        {"sign": -1.0},
        "the rotation turns the wrong way (by -m·θ_i): x[2i] gets -x[2i+1]·sin, x[2i+1] gets "
        "+x[2i]·sin",
    ),
    "positions 1..T": (
        {"start": 1},
        "the positions start at 1; they start at 0, so the first token comes out unchanged",
    ),
    "θ_i = 10000^(-2(i+1)/D)": (
        {"exponent": "2(i+1)"},
        "off-by-one in the exponent: θ_i = 10000^(-2i/D) for i = 0 .. D/2-1, so the first pair "
        "turns by exactly m radians",
    ),
    "θ_i = 10000^(-i/D)": (
        {"exponent": "i"},
        "the exponent misses its factor 2: θ_i = 10000^(-2i/D), not 10000^(-i/D)",
    ),
    "θ_i = 10000^(+2i/D)": (
        {"exponent": "-2i"},
        "the exponent's sign is flipped: θ_i = 10000^(-2i/D) <= 1, slower for later pairs",
    ),
    "no rotation at all": ({"exponent": "none"}, "q and k come back unrotated"),
}
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
            (
                f"<rope(q, m), rope(k, n)> must depend on m - n only (spread at fixed m - n: "
                f"{spread:.2g})",
                spread < _TOL,
            ),
        ]
        if not holds
    ]
    if not broken:
        return (
            "your function is a rotary embedding (position 0 unchanged, norms kept, scores "
            "relative), but its angles are not m·θ_i with θ_i = 10000^(-2i/D): check the base "
            "and the exponent"
        )
    return "the output is not the expected rotation: " + "; ".join(broken)


def check_rope(fn: Callable) -> None:
    """Check a learner's rotary position embedding of queries and keys on fresh random cases.

    Args:
        fn: called as ``fn(q, k)`` with float64 tensors whose tokens sit at positions
            ``0 .. T-1``; returns ``(q_rotated, k_rotated)`` with the paper's interleaved pairs
            ``(x[2i], x[2i+1])`` rotated by ``m·θ_i``, ``θ_i = 10000^(-2i/D)``.

    Returns:
        None; prints one line when every case passes.

    Raises:
        AssertionError: naming the case and the likely mistake (sin/cos or exponent slips,
            pairs that differ between q and k or between the angles and the features, ...).

    Shapes:
        q, k ``(..., T, D)`` -> the same shapes.

    Introduced in chapter 05 (exercise ex-05-rope).
    """
    __tracebackhide__ = True  # show the learner the verdict, not the checker's frames
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
            raise _fail(
                name, case, f"shapes {tuple(qr.shape)}, {tuple(kr.shape)}; expected {shape}"
            )
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


# ----------------------------------------------------------------------------- ALiBi


def _alibi(H: int, T: int, *, first=1, rate="8h/H", sign=-1.0, order=1) -> torch.Tensor:
    """ALiBi's bias on j <= i written with deliberate mistakes (float64)."""
    h = torch.arange(first, first + H, dtype=torch.float64)  # (H,)
    slopes = {"8h/H": 2.0 ** (-8 * h / H), "h": 2.0**-h, "none": torch.ones(H)}[rate]
    slopes = slopes if order == 1 else slopes.flip(0)
    distance = torch.arange(T)[:, None] - torch.arange(T)  # (T, T): i - j
    return sign * slopes[:, None, None] * distance  # (H, T, T)


_ALIBI_MISTAKES = [
    ("the bias has the wrong sign: it must penalise distance, -slope·(i - j) <= 0", {"sign": 1.0}),
    (
        "off-by-one in the slopes: h runs from 1 to H, so the first slope is 2^(-8/H), not 1",
        {"first": 0},
    ),
    ("the slopes are in reverse order: head 1 has the steepest slope 2^(-8/H)", {"order": -1}),
    ("the slopes are 2^(-h), the 8-head values; for H heads they are 2^(-8h/H)", {"rate": "h"}),
    (
        "every head has slope 1: multiply the distance by each head's slope 2^(-8h/H)",
        {"rate": "none"},
    ),
]


def check_alibi_bias(fn: Callable) -> None:
    """Check a learner's ALiBi bias on fresh random sizes (the keys ``j <= i`` only).

    Args:
        fn: called as ``fn(num_heads, T)``; returns ``bias[h, i, j] = -slope_h · (i - j)``
            with slopes ``2^(-8h/H)``, ``h = 1..H``. Entries with ``j > i`` are not checked:
            a causal mask hides them.

    Returns:
        None; prints one line when every case passes.

    Raises:
        AssertionError: naming the case and the likely mistake.

    Shapes:
        -> ``(H, T, T)``.

    Introduced in chapter 05 (exercise ex-05-alibi).
    """
    __tracebackhide__ = True  # show the learner the verdict, not the checker's frames
    name = "check_alibi_bias"
    gen = _generator()
    sizes = [(8, 6), (4, _randint(gen, 2, 9)), (16, _randint(gen, 3, 7)), (2, 10)]
    for H, T in sizes:
        case = f"num_heads={H}, T={T}"
        bias = _returned_tensor(name, case, _call(name, case, fn, H, T))
        if bias.shape != (H, T, T):
            raise _fail(name, case, f"shape {tuple(bias.shape)}, expected (H, T, T) = {(H, T, T)}")
        seen = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T): j <= i, what a causal model sees
        bias = bias.where(seen, 0.0)  # the keys after the query may hold anything, even -inf
        if _near(bias, alibi_bias(H, T, dtype=torch.float64).where(seen, 0.0)):
            continue
        for message, knobs in _ALIBI_MISTAKES:
            if _near(bias, _alibi(H, T, **knobs).where(seen, 0.0)):
                raise _fail(name, case, message)
        raise _fail(name, case, "the bias differs from -2^(-8h/H)·(i - j) on the keys j <= i")
    print(f"{name}: all {len(sizes)} random sizes match -2^(-8h/H)·(i - j) for j <= i.")
