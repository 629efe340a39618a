"""Attention on graphs: GCN (weights fixed by the graph) and GAT (weights computed from content).

Both layers take node features ``x (N, F)`` and a boolean adjacency ``adj (N, N)`` in which
``adj[i, j] = True`` means node ``i`` may attend to (receive from) node ``j``: the package's
mask convention. The adjacency may be dense or a sparse COO tensor; the dense path costs
``O(N²)`` whatever the graph, the sparse one ``O(|E|)``. Both return ``(out, weights)``: the
weights with which each node mixes its neighbours (sparse when the adjacency is sparse).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_int, check_probability
from .core import masked_softmax

__all__ = ["GATLayer", "GCNLayer", "complete_graph", "normalized_adjacency"]


def _check_graph(x: torch.Tensor, adj: torch.Tensor, in_features: int | None = None) -> None:
    """Raise ValueError naming the shapes when ``x`` and ``adj`` do not describe one graph."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a 2-D float tensor of node features (N, F), got {got}")
    if in_features is not None and x.shape[1] != in_features:
        raise ValueError(f"x has F={x.shape[1]} features per node, the layer expects {in_features}")
    if not isinstance(adj, torch.Tensor) or adj.dtype != torch.bool:
        got = adj.dtype if isinstance(adj, torch.Tensor) else type(adj).__name__
        raise ValueError(
            f"adj must be a bool tensor (True = may attend), got {got}; "
            "convert a 0/1 adjacency with adj.bool()"
        )
    if adj.layout not in (torch.strided, torch.sparse_coo):
        raise ValueError(f"adj must be dense or sparse COO, got layout {adj.layout}")
    N = x.shape[0]  # nodes
    if tuple(adj.shape) != (N, N):
        raise ValueError(f"adj of shape {tuple(adj.shape)} does not match N={N} nodes: need (N, N)")
    if adj.device != x.device:
        raise ValueError(f"adj is on {adj.device} but x is on {x.device}")


def _with_self_loops(adj: torch.Tensor) -> torch.Tensor:
    """``adj`` with every ``adj[i, i]`` True (existing self-loops are kept, not doubled)."""
    N = adj.shape[0]
    if adj.layout == torch.strided:
        return adj | torch.eye(N, dtype=torch.bool, device=adj.device)
    loops = torch.arange(N, device=adj.device).expand(2, N)  # (2, N): (i, i)
    edges = torch.cat((_edge_index(adj), loops), dim=1)  # (2, E + N), maybe with duplicates
    ones = torch.ones(edges.shape[1], dtype=torch.bool, device=adj.device)
    # coalesce() sums duplicates, which for bool values is an OR: a kept loop is not doubled.
    return torch.sparse_coo_tensor(edges, ones, (N, N), check_invariants=False).coalesce()


def _edge_index(adj: torch.Tensor) -> torch.Tensor:
    """The ``(2, E)`` indices ``(i, j)`` of the True entries of a sparse COO adjacency."""
    adj = adj.coalesce()
    return adj.indices()[:, adj.values()]  # (2, E): row i receives from column j


def complete_graph(num_nodes: int, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Return the adjacency of the complete graph (self-loops included): every entry True.

    Graph attention on this graph is ordinary self-attention: every node attends to every node.

    Args:
        num_nodes: ``N``.
        device: of the result (keyword only).

    Returns:
        A bool tensor of ones.

    Shapes:
        -> ``(N, N)``.

    Introduced in chapter 14 (graphs and attention families).
    """
    check_int("num_nodes", num_nodes)
    return torch.ones(num_nodes, num_nodes, dtype=torch.bool, device=device)


def normalized_adjacency(
    adj: torch.Tensor, *, add_self_loops: bool = True, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    r"""Return GCN's propagation matrix ``\hat A = \tilde D^{-1/2} \tilde A \tilde D^{-1/2}``.

    ``\tilde A = A + I`` (Kipf & Welling 2017, eq. 2) and ``\tilde D_{ii} = \sum_j \tilde A_{ij}``.
    Entry ``(i, j)`` is ``1 / \sqrt{\tilde d_i \tilde d_j}`` for an edge and 0 otherwise: it depends
    on the graph alone, never on the node features. Nodes without any edge get a zero row.

    Args:
        adj: bool adjacency, dense or sparse COO; True = edge (may attend).
        add_self_loops: add ``I`` first (keyword only). Existing self-loops are not doubled.
        dtype: of the result (keyword only).

    Returns:
        ``\hat A``, dense or sparse COO like ``adj``.

    Shapes:
        adj ``(N, N)`` -> ``(N, N)``.

    Introduced in chapter 14 (graphs and attention families).
    """
    if not isinstance(adj, torch.Tensor) or adj.dim() != 2 or adj.shape[0] != adj.shape[1]:
        got = tuple(adj.shape) if isinstance(adj, torch.Tensor) else type(adj).__name__
        raise ValueError(f"adj must be a square (N, N) tensor, got {got}")
    _check_graph(torch.empty(adj.shape[0], 1, device=adj.device), adj)
    if add_self_loops:
        adj = _with_self_loops(adj)
    if adj.layout == torch.strided:
        a = adj.to(dtype)  # (N, N) of 0/1
        deg = a.sum(dim=1)  # (N,): \tilde d_i
        inv_sqrt = torch.where(deg > 0, deg.rsqrt(), torch.zeros_like(deg))  # isolated: 0
        return inv_sqrt[:, None] * a * inv_sqrt[None, :]  # (N, N)
    i, j = _edge_index(adj)  # (E,), (E,)
    deg = torch.zeros(adj.shape[0], dtype=dtype, device=adj.device).index_add_(
        0, i, torch.ones(i.shape[0], dtype=dtype, device=adj.device)
    )  # (N,): edges per row
    values = (deg[i] * deg[j]).rsqrt()  # (E,): 1 / sqrt(d_i d_j)
    return torch.sparse_coo_tensor(
        torch.stack((i, j)), values, adj.shape, check_invariants=False
    ).coalesce()


class GCNLayer(nn.Module):
    r"""A graph convolution ``H' = \hat A H W`` (Kipf & Welling 2017): fixed neighbour weights.

    Node ``i``'s output is ``\sum_j \hat A_{ij} (x_j W)``: an average over its neighbours (and
    itself) with weights ``1/\sqrt{\tilde d_i \tilde d_j}`` set by the degrees. Nothing is
    learned about *which* neighbour matters: that is the difference from attention (``GATLayer``).
    The nonlinearity is left to the model. Cost: ``2NFF'`` FLOPs for ``xW`` plus ``2|E|F'``
    for the sparse product, linear in the edges.

    Args:
        in_features: ``F``.
        out_features: ``F'``.
        bias: add a learned bias after the aggregation.
        add_self_loops: use ``A + I`` (keyword only).

    Shapes:
        x ``(N, F)``, adj ``(N, N)`` -> out ``(N, F')``, weights ``(N, N)`` (sparse if adj is).

    Introduced in chapter 14 (graphs and attention families).
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *, add_self_loops: bool = True
    ) -> None:
        super().__init__()
        check_int("in_features", in_features)
        check_int("out_features", out_features)
        self.in_features, self.add_self_loops = in_features, add_self_loops
        self.lin = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Aggregate ``x W`` over the neighbours with GCN's fixed weights. Chapter 14."""
        _check_graph(x, adj, self.in_features)
        weights = normalized_adjacency(adj, add_self_loops=self.add_self_loops, dtype=x.dtype)
        h = self.lin(x)  # (N, F) -> (N, F')
        if adj.layout == torch.strided:
            out = weights @ h  # (N, N) @ (N, F') -> (N, F'): N² F' multiply-adds
        else:
            out = torch.sparse.mm(weights, h)  # (N, N) sparse @ (N, F'): |E| F' multiply-adds
        if self.bias is not None:
            out = out + self.bias
        return out, weights


class GATLayer(nn.Module):
    r"""Graph attention (Veličković et al. 2018): masked attention over each node's neighbours.

    Per head, ``h = x W``; node ``i`` scores each neighbour ``j`` with
    ``e_{ij} = LeakyReLU(a_{dst} \cdot h_i + a_{src} \cdot h_j)`` (the paper's
    ``a^T [W h_i \| W h_j]``, split in two), normalises the scores with a softmax over its
    neighbours only (the adjacency is the mask, True = may attend) and returns
    ``\sum_j \alpha_{ij} h_j``. The coefficients depend on the features: change ``x`` and they
    change. ``score="dot"`` scores with ``q_i \cdot k_j / \sqrt{F'}`` instead (a Transformer head
    masked by the graph); on ``complete_graph(N)`` that is plain self-attention. Heads are
    concatenated (hidden layers) or averaged (``concat=False``, the paper's output layer).

    Args:
        in_features: ``F``.
        out_features: ``F'`` per head.
        num_heads: ``H``.
        bias: add a learned bias after the aggregation.
        score: ``"additive"`` (GAT) or ``"dot"`` (scaled dot product) (keyword only).
        concat: concatenate the heads (``H F'`` outputs) or average them (``F'``) (keyword only).
        negative_slope: of the LeakyReLU, 0.2 in the paper (keyword only).
        dropout: on the attention coefficients, in training mode only (keyword only).
        add_self_loops: let each node attend to itself, as the paper does (keyword only).

    Shapes:
        x ``(N, F)``, adj ``(N, N)`` -> out ``(N, H F')`` or ``(N, F')``,
        weights ``(H, N, N)`` (sparse if adj is).

    Introduced in chapter 14 (graphs and attention families).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_heads: int = 1,
        bias: bool = True,
        *,
        score: str = "additive",
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            check_int(name, value)
        check_int("num_heads", num_heads)
        if score not in ("additive", "dot"):
            raise ValueError(f"score must be 'additive' or 'dot', got {score!r}")
        check_probability("dropout", dropout)
        self.in_features, self.out_features, self.num_heads = in_features, out_features, num_heads
        self.score, self.concat, self.negative_slope = score, concat, negative_slope
        self.dropout, self.add_self_loops = dropout, add_self_loops
        HF = num_heads * out_features
        self.lin = nn.Linear(in_features, HF, bias=False)  # W of every head, side by side
        if score == "additive":
            std = math.sqrt(2.0 / (1 + out_features))  # Glorot for a (2F' -> 1) vector
            self.att_src = nn.Parameter(torch.randn(num_heads, out_features) * std)
            self.att_dst = nn.Parameter(torch.randn(num_heads, out_features) * std)
        else:
            self.q_proj = nn.Linear(in_features, HF, bias=False)
            self.k_proj = nn.Linear(in_features, HF, bias=False)
        self.bias = nn.Parameter(torch.zeros(HF if concat else out_features)) if bias else None

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        N = t.shape[0]  # nodes
        return t.view(N, self.num_heads, self.out_features).transpose(0, 1)  # -> (H, N, F')

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from each node to its neighbours in every head. Chapter 14."""
        _check_graph(x, adj, self.in_features)
        if self.add_self_loops:
            adj = _with_self_loops(adj)
        N, H, Fo = x.shape[0], self.num_heads, self.out_features  # nodes, heads, F' per head
        h = self._heads(self.lin(x))  # (N, F) -> (N, H F') -> (H, N, F')
        if self.score == "additive":
            # As products, so that the flop counter sees them: (H, N, F') @ (H, F', 1) -> (H, N)
            s_dst = (h @ self.att_dst[:, :, None]).squeeze(-1)  # (H, N): a_dst . h_i
            s_src = (h @ self.att_src[:, :, None]).squeeze(-1)  # (H, N): a_src . h_j
        else:
            q, k = self._heads(self.q_proj(x)), self._heads(self.k_proj(x))  # (H, N, F') each
        p = self.dropout if self.training else 0.0
        if adj.layout == torch.strided:
            if self.score == "additive":
                scores = s_dst[:, :, None] + s_src[:, None, :]  # (H, N, 1) + (H, 1, N) -> (H, N, N)
                scores = F.leaky_relu(scores, self.negative_slope)
            else:
                scores = q @ k.transpose(-2, -1) / math.sqrt(Fo)  # (H, N, F') -> (H, N, N)
            weights = masked_softmax(scores, adj)  # (H, N, N): over each node's neighbours
            out = F.dropout(weights, p) @ h  # (H, N, N) @ (H, N, F') -> (H, N, F')
        else:
            i, j = _edge_index(adj)  # (E,), (E,): node i receives from node j
            if self.score == "additive":
                e = F.leaky_relu(s_dst[:, i] + s_src[:, j], self.negative_slope)  # (H, E)
            else:
                e = (q[:, i] * k[:, j]).sum(-1) / math.sqrt(Fo)  # (H, E)
            # Softmax over the edges that enter each node: subtract the row max, normalise.
            row_max = torch.full((H, N), -math.inf, dtype=e.dtype, device=e.device)
            row_max = row_max.scatter_reduce(1, i.expand(H, -1), e, "amax")  # (H, N)
            ex = (e - row_max[:, i]).exp()  # (H, E)
            total = torch.zeros(H, N, dtype=e.dtype, device=e.device).index_add_(1, i, ex)
            alpha = ex / total[:, i]  # (H, E): sums to 1 over each node's edges
            # One block-diagonal sparse matrix for all heads: (H N, H N) @ (H N, F').
            offset = (torch.arange(H, device=x.device) * N)[:, None]  # (H, 1)
            index = torch.stack(((i + offset).flatten(), (j + offset).flatten()))  # (2, H E)
            block = torch.sparse_coo_tensor(
                index, F.dropout(alpha, p).flatten(), (H * N, H * N), check_invariants=False
            )
            out = torch.sparse.mm(block, h.reshape(H * N, Fo)).view(H, N, Fo)  # (H, N, F')
            head_index = torch.arange(H, device=x.device).repeat_interleave(i.shape[0])
            weights = torch.sparse_coo_tensor(
                torch.stack((head_index, i.repeat(H), j.repeat(H))),
                alpha.flatten(),
                (H, N, N),
                check_invariants=False,
            ).coalesce()  # (H, N, N), sparse
        if self.concat:
            out = out.transpose(0, 1).reshape(N, H * Fo)  # (H, N, F') -> (N, H, F') -> (N, H F')
        else:
            out = out.mean(dim=0)  # (H, N, F') -> (N, F')
        if self.bias is not None:
            out = out + self.bias
        return out, weights
