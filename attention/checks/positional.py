"""Checkers of ``attention.positional`` (chapter 05): the sinusoidal encoding and the ALiBi bias.

``checks/rope.py`` checks ``apply_rope``, with this module's tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..positional import alibi_bias, sinusoidal_positional_encoding
from ._common import _call, _fail, _generator, _randint, _tensor

# A learner may compute angles in float32: positions up to ~100 then cost up to ~1e-5. Every
# mistake diagnosed below changes some entry by far more than this.
_TOL = 1e-4


def _near(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether a equals b up to _TOL where b is not NaN (NaN: a float32 value is unreliable)."""
    if a.shape != b.shape:
        return False
    known = ~b.isnan()
    return bool(known.any()) and bool((a.double() - b)[known].abs().max() <= _TOL)


def _returned_tensor(name: str, case: str, out: object) -> torch.Tensor:
    """The learner's result as a float64 CPU tensor, or a failure saying what came back."""
    return _tensor(name, case, out).to("cpu", torch.float64)


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
    ("sin and cos are swapped: even columns 2i hold sin, odd columns 2i+1 hold cos",
     {"swap": True}),
    ("positions start at 1; they start at 0 (row 0 is [0, 1, 0, 1, ...]), as in the "
     "article's own code, whatever its prose says", {"start": 1}),
    ("off-by-one in the exponent: 10000^(2(i+1)/d_model); the pair (2i, 2i+1) uses "
     "10000^(2i/d_model), so the first pair has frequency 1", {"exponent": "2(i+1)"}),
    ("the exponent is doubled: torch.arange(0, d_model, 2) already gives 2i, so do not "
     "multiply it by 2 again", {"exponent": "4i"}),
    ("the exponent misses its factor 2: use 10000^(2i/d_model), not 10000^(i/d_model)",
     {"exponent": "i"}),
    ("the cos column 2i+1 uses 10000^((2i+1)/d_model); both columns of a pair share the "
     "frequency 10000^(-2i/d_model)", {"exponent": "column"}),
    ("the position is multiplied by 10000^(2i/d_model); divide by it instead", {"op": "multiply"}),
    ("this is the article's prose formula sin(p/sqrt(d)), cos(p/sqrt(d)): one frequency for "
     "every pair, so positions 142 apart (d=512) look alike; use 10000^(2i/d_model)",
     {"op": "sqrt"}),
    ("all sines come first and all cosines second (the tensor2tensor layout); the paper's "
     "formula interleaves them: sin in column 2i, cos in column 2i+1", {"half": True}),
]  # fmt: skip


def check_sinusoidal_positional_encoding(fn: Callable) -> None:
    """Check a learner's sinusoidal positional encoding on fresh random sizes.

    Args:
        fn: called as ``fn(max_len, d_model)`` with ints (``d_model`` even); returns the table.

    Shapes:
        -> ``(max_len, d_model)``.

    Introduced in chapter 05 (exercise ex-05-sinusoidal).
    """
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
        raise _fail(name, case, f"the table differs from PE[p, 2i] = sin(p / 10000^(2i/d_model)), "
                    f"PE[p, 2i+1] = cos(same) by up to {(pe - ref).abs().max():.3g}, first at "
                    f"position {row}")  # fmt: skip
    print(f"{name}: all {len(sizes)} random sizes match the formula of Vaswani et al. (2017).")


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
    ("off-by-one in the slopes: h runs from 1 to H, so the first slope is 2^(-8/H), not 1",
     {"first": 0}),
    ("the slopes are in reverse order: head 1 has the steepest slope 2^(-8/H)", {"order": -1}),
    ("the slopes are 2^(-h), the 8-head values; for H heads they are 2^(-8h/H)", {"rate": "h"}),
    ("every head has slope 1: multiply the distance by each head's slope 2^(-8h/H)",
     {"rate": "none"}),
]  # fmt: skip


def check_alibi_bias(fn: Callable) -> None:
    """Check a learner's ALiBi bias on fresh random sizes (the keys ``j <= i`` only).

    Args:
        fn: called as ``fn(num_heads, T)``, ``num_heads`` a power of two; returns
            ``bias[h, i, j] = -slope_h · (i - j)`` with slopes ``2^(-8h/H)``, ``h = 1..H``.
            Entries with ``j > i`` are not checked: a causal mask hides them.

    Shapes:
        -> ``(H, T, T)``.

    Introduced in chapter 05 (exercise ex-05-alibi).
    """
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
