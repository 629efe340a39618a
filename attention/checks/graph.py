"""Checker of ``attention.graph`` (chapter 14): one graph-attention (GAT) head by hand."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._common import _call, _close, _fail, _first_match, _generator, _randint, _randn, _tensor


def _gat_head(x, adj, weight, a_src, a_dst, *, mask="neighbours", loops=True, axis=-1,
              leaky=True, slope=0.2, swap=False, transpose=False):  # fmt: skip
    """One GAT head written with deliberate mistakes (float64); returns (out, weights)."""
    N = x.shape[0]  # nodes
    h = x @ weight  # (N, F')
    if swap:
        a_src, a_dst = a_dst, a_src
    adj = adj.T if transpose else adj
    scores = (h @ a_dst)[:, None] + (h @ a_src)[None, :]  # (N, N): a_dst.h_i + a_src.h_j
    scores = F.leaky_relu(scores, slope) if leaky else scores
    allowed = adj | torch.eye(N, dtype=torch.bool) if loops else adj
    if mask == "neighbours":
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scores, dim=axis).nan_to_num(0.0)  # an empty row: zeros
    return weights @ h, weights


def _gat_output(*args, **knobs) -> torch.Tensor:
    return _gat_head(*args, **knobs)[0]


_MISTAKES = [
    ("the softmax runs over all nodes: mask the non-neighbours with -inf first, so that each "
     "node attends to its neighbours (and itself) only", {"mask": "all"}),
    ("the self-loops are missing: GAT lets each node attend to itself, so use adj | I as the "
     "mask (a node without neighbours then still has a weight of 1 on itself)", {"loops": False}),
    ("the softmax runs over the wrong axis (dim=0): each node i's weights over its neighbours j "
     "(a row) must sum to 1", {"axis": 0}),
    ("the LeakyReLU (negative slope 0.2) is missing: e_ij = LeakyReLU(a_dst.h_i + a_src.h_j)",
     {"leaky": False}),
    ("the halves of a are swapped: a_dst multiplies the attending node's h_i, a_src the "
     "neighbour's h_j", {"swap": True}),
    ("the LeakyReLU has PyTorch's default negative slope 0.01; GAT uses 0.2: "
     "F.leaky_relu(scores, 0.2)", {"slope": 0.01}),
    ("the mask is transposed: adj[i, j] = True means node i may attend to (receive from) node "
     "j, so row i of the mask is node i's neighbours; this case's graph is directed",
     {"transpose": True}),
    ("the softmax runs over all nodes and the self-loops are missing",
     {"mask": "all", "loops": False}),
]  # fmt: skip


def _random_graph(gen: torch.Generator, N: int, *, directed: bool = False) -> torch.Tensor:
    """A boolean adjacency without self-loops in which node 0 has no neighbour: symmetric, or
    directed (``adj[i, j]`` and ``adj[j, i]`` drawn apart, so a transposed mask shows)."""
    upper = (torch.rand(N, N, generator=gen) < 0.35).triu(1)
    lower = (torch.rand(N, N, generator=gen) < 0.35).tril(-1) if directed else upper.T
    adj = upper | lower
    adj[0], adj[:, 0] = False, False
    adj[1, 2] = adj[2, 1] = True  # at least one edge
    if directed:
        adj[1, 3], adj[3, 1] = True, False  # at least one one-way edge
    return adj


def check_gat_head(fn: Callable) -> None:
    """Check a learner's single GAT head against a float64 reference on fresh random graphs.

    Args:
        fn: called as ``fn(x, adj, weight, a_src, a_dst)`` with float64 ``x (N, F)``, a boolean
            ``adj (N, N)`` without self-loops (True = may attend), ``weight (F, F')`` and
            ``a_src``, ``a_dst`` ``(F',)``; returns ``(out, weights)`` (or ``out`` alone, then
            the weights go unchecked).

    Shapes:
        -> out ``(N, F')``, weights ``(N, N)``.

    Introduced in chapter 14 (exercise ex-14-gat-head).
    """
    name = "check_gat_head"
    gen = _generator()
    sizes = [  # (N, F, F', directed)
        (6, 4, 3, False),
        (_randint(gen, 5, 12), _randint(gen, 2, 7), _randint(gen, 2, 6), False),
        (_randint(gen, 5, 12), _randint(gen, 2, 7), _randint(gen, 2, 6), True),
    ]
    for N, Fi, Fo, directed in sizes:
        kind = "directed graph, " if directed else ""
        case = f"N={N} nodes ({kind}node 0 without neighbours), F={Fi}, F'={Fo}"
        x, adj = _randn(gen, N, Fi), _random_graph(gen, N, directed=directed)
        weight, a_src, a_dst = _randn(gen, Fi, Fo), _randn(gen, Fo), _randn(gen, Fo)
        ref, ref_w = _gat_head(x, adj, weight, a_src, a_dst)
        result = _call(name, case, fn, x.clone(), adj.clone(), weight.clone(), a_src, a_dst)
        out, weights = result if isinstance(result, tuple | list) else (result, None)
        out = _tensor(name, case, out, (N, Fo)).to("cpu", torch.float64)
        if weights is not None:
            weights = _tensor(name, case, weights, (N, N)).to("cpu", torch.float64)
        if out.isnan().any():
            raise _fail(
                name,
                case,
                "the output has NaN: a node whose mask row is all False "
                "(no neighbour, no self-loop) gets softmax of all -inf; add self-loops",
            )
        if _close(out, ref) and (weights is None or _close(weights, ref_w)):
            continue
        variant = functools.partial(_gat_output, x, adj, weight, a_src, a_dst)
        diagnosis = _first_match(out, _MISTAKES, variant, right=ref)
        if diagnosis is None and weights is not None and _close(out, ref):
            diagnosis = "the output is right but the weights are not: return the (N, N) softmax"
        raise _fail(name, case, diagnosis or (
            f"the output differs from the GAT head by up to {(out - ref).abs().max():.3g}: "
            "h = x @ weight; e_ij = LeakyReLU(a_dst.h_i + a_src.h_j, 0.2); softmax over j in "
            "the neighbours of i and i itself; out = weights @ h"))  # fmt: skip
    print(f"{name}: all {len(sizes)} random graphs match the GAT head (Veličković et al. 2018).")
