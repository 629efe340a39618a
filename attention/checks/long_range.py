"""Checker of ``attention.long_range`` (chapter 10): the maximum path length of four layers."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..long_range import max_path_length
from ._common import _as_int, _call, _fail, _generator, _randint

_KINDS = ("attention", "recurrent", "convolution", "dilated")
_FORMULAS = {
    "attention": "1 (one layer connects every pair)",
    "recurrent": "n (the cell is applied once per position, from x_0 to h_{n-1})",
    "convolution": "ceil((n - 1) / (k - 1)) (each layer reaches k - 1 positions further back)",
    "dilated": "the smallest L with k^L >= n (L layers with dilations 1, k, k^2, ... see k^L)",
}


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _floor_log(n: int, k: int) -> int:
    """The largest L with k^L <= n, with integers."""
    layers = 0
    while k ** (layers + 1) <= n:
        layers += 1
    return layers


def _cases(gen: torch.Generator, layer: str) -> list[tuple[int, int]]:
    """Fresh ``(n, k)`` cases for one layer type, with the boundaries where mistakes show."""
    k = _randint(gen, 2, 8)
    n_small, n_big = _randint(gen, 3, 40), _randint(gen, 100, 5000)
    if layer in ("attention", "recurrent"):
        return [(2, 3), (n_small, k), (n_big, _randint(gen, 2, 8))]
    if layer == "convolution":
        m, k = _randint(gen, 2, 12), _randint(gen, 3, 8)  # k = 2 would make every case exact
        return [
            (9, 3),  # exactly 4 layers: fixed, so a failure message is reproducible
            (2 + m * (k - 1), k),  # one position more than m layers reach: m + 1 layers
            (1 + m * (k - 1), k),  # exactly m layers
            (n_small, 2),
            (n_big, k),
        ]
    m = _randint(gen, 2, 6)
    return [
        (125, 5),  # 5^3: math.log(125, 5) = 3.0000000000000004
        (216, 6),  # 6^3: math.log(216, 6) = 3.0000000000000004
        (16, 4),  # 4^2, where the float logarithm is exact
        (k**m, k),  # exactly m layers
        (k**m + 1, k),  # one more
        (n_big, _randint(gen, 3, 8)),
        (n_small, 2),
    ]


# layer -> [(message, the mistake as a function of (n, k))], the more specific first.
_MISTAKES: dict[str, list[tuple[str, Callable[[int, int], float]]]] = {
    "attention": [
        ("one attention layer connects every pair of positions, so the path length is 1 "
         "whatever n (O(1)); n is the recurrent layer's", lambda n, k: n),
        ("the signal passes the attention layer once: the path length is 1, not 0", lambda n, k: 0),
    ],
    "recurrent": [
        ("off-by-one: the n - 1 steps h_{t-1} -> h_t miss the cell's first application, "
         "x_0 -> h_0; from input 0 to output n - 1 the signal passes the cell n times",
         lambda n, k: n - 1),
        ("a recurrent layer is one layer, but its cell runs once per position: the route "
         "from x_0 to h_{n-1} passes it n times (O(n))", lambda n, k: 1),
    ],
    "convolution": [
        ("kernel size instead of receptive-field growth: a layer of width k reaches only "
         "k - 1 positions further back (L layers see 1 + L(k - 1) inputs), so divide by k - 1",
         lambda n, k: _ceil_div(n - 1, k)),
        ("kernel size instead of receptive-field growth: a layer of width k reaches only "
         "k - 1 positions further back (L layers see 1 + L(k - 1) inputs), so divide by k - 1",
         lambda n, k: _ceil_div(n, k)),
        ("rounded down: L layers must reach n - 1 positions back, so L = ceil((n - 1) / "
         "(k - 1)); a partly used layer is still a layer (ceiling division: -(-a // b))",
         lambda n, k: (n - 1) // (k - 1)),
        ("off-by-one: L layers see 1 + L(k - 1) inputs, so they must reach n - 1 positions "
         "back: ceil((n - 1) / (k - 1)), not ceil(n / (k - 1))", lambda n, k: _ceil_div(n, k - 1)),
        ("this is the dilated stack's ceil(log_k n); contiguous kernels have dilation 1, so "
         "each layer reaches only k - 1 positions further back",
         lambda n, k: max_path_length("dilated", n, k)),
    ],
    "dilated": [
        ("floating-point logarithm: math.log(125, 5) = 3.0000000000000004, so math.ceil "
         "gives 4 layers where 3 suffice (5^3 = 125); count with integers instead (multiply "
         "by k until k^L >= n)", lambda n, k: math.ceil(math.log(n, k))),
        ("off-by-one at exact powers: L layers with dilations 1, k, ..., k^(L-1) see exactly "
         "k^L inputs, so n = k^L positions need L layers, not floor(log_k n) + 1",
         lambda n, k: _floor_log(n, k) + 1),
        ("the dilation is ignored: with dilations 1, k, k^2, ... the receptive field is "
         "multiplied by k at each layer (L layers see k^L inputs), so only ceil(log_k n) "
         "layers are needed, not ceil((n - 1) / (k - 1))", lambda n, k: _ceil_div(n - 1, k - 1)),
        ("logarithm base 2: with kernel width k and dilations 1, k, k^2, ... the receptive "
         "field is k^L, so the base is k", lambda n, k: max_path_length("dilated", n, 2)),
    ],
}  # fmt: skip

_NOT_WHOLE_LAYERS = (
    "got {value:.4g}: a path length is a whole number of layers; round up, since a partly used "
    "layer is still a layer"
)


def check_max_path_length(fn: Callable) -> None:
    """Check a learner's maximum path length for four layer types on fresh random cases.

    Args:
        fn: called as ``fn(layer, n, k)`` with ``layer`` one of ``"attention"``,
            ``"recurrent"``, ``"convolution"`` (contiguous kernels of width ``k``) and
            ``"dilated"`` (kernel ``k``, dilation ``k^l`` in layer ``l``), ``n >= 2`` and
            ``k >= 2`` (ignored by the first two); returns the number of layer (or cell)
            applications from input 0 to output ``n - 1``, as ``attention.max_path_length``.

    Introduced in chapter 10 (exercise ex-10-path-length).
    """
    name = "check_max_path_length"
    gen = _generator()
    total = 0
    for layer in _KINDS:
        cases = _cases(gen, layer)
        answers, wrong = {}, []  # (n, k) -> the learner's answer; the cases it gets wrong
        for n, k in cases:
            case = f"layer={layer!r}, n={n}, k={k}"
            answers[n, k] = _as_int(
                name,
                case,
                _call(name, case, fn, layer, n, k),
                expected="a number of layers",
                not_whole=_NOT_WHOLE_LAYERS,
            )
            expected = max_path_length(layer, n, k)
            if answers[n, k] != expected:
                wrong.append((case, answers[n, k], expected))
        total += len(cases)
        if not wrong:
            continue
        case, got, expected = wrong[0]
        # A mistake explains the answers if it gives every wrong one; of those, name the one
        # that agrees with the learner most often (several coincide on some cases).
        explained = [
            (sum(mistake(*nk) == a for nk, a in answers.items()), -i, message)
            for i, (message, mistake) in enumerate(_MISTAKES[layer])
            if all(
                mistake(*nk) == a for nk, a in answers.items() if a != max_path_length(layer, *nk)
            )
        ]
        if explained:
            message = max(explained)[2]
            raise _fail(name, case, f"got {got}, expected {expected}: {message}")
        raise _fail(
            name, case, f"got {got}, expected {expected}; for {layer!r} it is {_FORMULAS[layer]}"
        )
    print(
        f"{name}: all {total} random cases match Table 1 of Vaswani et al. (2017): "
        "attention 1, recurrent n, convolution ceil((n-1)/(k-1)), dilated ceil(log_k n)."
    )
