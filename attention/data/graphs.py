"""Toy graphs generated in code: a stochastic block model and sparse random graphs (chapter 14)."""

from __future__ import annotations

import torch

from .._validate import check_int

__all__ = ["make_random_graph", "make_sbm_graph"]


def make_sbm_graph(
    num_nodes: int,
    *,
    num_classes: int = 4,
    avg_degree: float = 8.0,
    homophily: float = 0.8,
    num_features: int = 16,
    signal: float = 0.5,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw a stochastic block model graph with noisy node features and a class per node.

    Nodes are split evenly into ``num_classes`` classes. Each pair is joined independently,
    with a probability chosen so that a node has ``avg_degree`` neighbours on average, a
    share ``homophily`` of them in its own class. A node's features are its class centroid
    (drawn from N(0, I)) times ``signal`` plus N(0, I) noise: alone they identify the class
    poorly, the neighbourhood well.

    Args:
        num_nodes: ``N``; at least 2 per class.
        num_classes: ``C`` (keyword only).
        avg_degree: expected neighbours per node (keyword only).
        homophily: expected share of a node's edges inside its class, in ``[0, 1]`` (keyword only).
        num_features: ``F`` (keyword only).
        signal: scale of the class centroid in the features (keyword only).
        seed: seed of the ``torch.Generator`` (keyword only).

    Returns:
        ``(x, labels, adj)``: float32 features, class ids and the symmetric boolean adjacency
        without self-loops (True = may attend).

    Shapes:
        -> x ``(N, F)``, labels ``(N,)``, adj ``(N, N)``.

    Introduced in chapter 14 (graphs and attention families).
    """
    check_int("num_classes", num_classes)
    check_int("num_nodes", num_nodes, 2 * num_classes)
    check_int("num_features", num_features)
    check_int("seed", seed, 0)
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"homophily must be in [0, 1], got {homophily!r}")
    per_class = num_nodes / num_classes
    p_in = homophily * avg_degree / (per_class - 1)
    p_out = (1 - homophily) * avg_degree / max(num_nodes - per_class, 1)
    if not (avg_degree > 0 and p_in <= 1 and p_out <= 1):
        raise ValueError(
            f"avg_degree={avg_degree!r} is not reachable with {num_nodes} nodes in "
            f"{num_classes} classes and homophily={homophily}"
        )
    gen = torch.Generator().manual_seed(seed)
    labels = (torch.arange(num_nodes) % num_classes)[torch.randperm(num_nodes, generator=gen)]
    same = labels[:, None] == labels[None, :]  # (N, N)
    prob = torch.where(same, p_in, p_out)  # (N, N)
    upper = (torch.rand(num_nodes, num_nodes, generator=gen) < prob).triu(1)  # i < j only
    adj = upper | upper.T  # symmetric, no self-loops
    centroids = torch.randn(num_classes, num_features, generator=gen)
    x = signal * centroids[labels] + torch.randn(num_nodes, num_features, generator=gen)
    return x, labels, adj


def make_random_graph(num_nodes: int, avg_degree: float, *, seed: int = 0) -> torch.Tensor:
    """Draw a sparse random undirected graph with about ``avg_degree`` neighbours per node.

    ``N * avg_degree / 2`` node pairs are drawn uniformly (self-pairs and repeats dropped), so
    the work is proportional to the edges, not to ``N²``: graphs of any size are cheap.

    Args:
        num_nodes: ``N``.
        avg_degree: the mean number of neighbours (slightly less after dropping repeats).
        seed: seed of the ``torch.Generator`` (keyword only).

    Returns:
        A sparse COO boolean adjacency, symmetric, without self-loops (True = may attend).

    Shapes:
        -> ``(N, N)``.

    Introduced in chapter 14 (graphs and attention families).
    """
    check_int("num_nodes", num_nodes, 2)
    check_int("seed", seed, 0)
    if not 0 < avg_degree < num_nodes:
        raise ValueError(f"avg_degree must be in (0, num_nodes={num_nodes}), got {avg_degree!r}")
    gen = torch.Generator().manual_seed(seed)
    pairs = int(num_nodes * avg_degree / 2)
    i, j = torch.randint(0, num_nodes, (2, pairs), generator=gen)
    i, j = i[i != j], j[i != j]  # no self-loops
    index = torch.cat((torch.stack((i, j)), torch.stack((j, i))), dim=1)  # both directions
    ones = torch.ones(index.shape[1], dtype=torch.bool)
    shape = (num_nodes, num_nodes)
    # coalesce() merges repeated pairs (summing bools is an OR)
    return torch.sparse_coo_tensor(index, ones, shape, check_invariants=False).coalesce()
