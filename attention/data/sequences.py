"""Toy sequence tasks generated in code: recall at one or several distances (chapters 10 and 04)
and key-value retrieval (chapter 14). Data are deterministic given ``seed``."""

from __future__ import annotations

import torch

from .._validate import check_int

__all__ = ["make_multi_recall_data", "make_recall_data", "make_retrieval_data"]


def make_recall_data(
    num_examples: int,
    seq_len: int,
    distance: int,
    *,
    num_symbols: int = 16,
    ignore_index: int = -100,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate random sequences whose target at each position is the token ``distance`` back.

    The tokens are drawn uniformly and independently, so the target at position ``t``,
    ``tokens[t - distance]``, can be known only by looking ``distance`` steps back: guessing
    gives ``1 / num_symbols``. The first ``distance`` positions have no target and hold
    ``ignore_index`` (the default is PyTorch's ``F.cross_entropy`` default, -100).

    Args:
        num_examples: number of sequences ``N``.
        seq_len: tokens per sequence ``T``; must exceed ``distance``.
        distance: the dependency distance ``d >= 1``.
        num_symbols: vocabulary size ``V``; tokens are ``0 .. V - 1`` (keyword only).
        ignore_index: target of the positions ``t < d`` (keyword only).
        seed: seed of the ``torch.Generator`` that draws the tokens (keyword only).

    Returns:
        ``(tokens, targets)``, both ``torch.long``.

    Shapes:
        -> tokens ``(N, T)``, targets ``(N, T)``.

    Introduced in chapter 10 (long-range dependencies).
    """
    for name, value in (("num_examples", num_examples), ("distance", distance)):
        check_int(name, value, 1)
    check_int("num_symbols", num_symbols, 2)
    check_int("seed", seed, 0)
    check_int("seq_len", seq_len, distance + 1)
    check_int("ignore_index", ignore_index, minimum=None)
    if 0 <= ignore_index < num_symbols:
        raise ValueError(f"ignore_index={ignore_index} is a token id (0 .. {num_symbols - 1})")
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, num_symbols, (num_examples, seq_len), generator=gen)  # (N, T)
    targets = torch.full_like(tokens, ignore_index)  # (N, T)
    targets[:, distance:] = tokens[:, :-distance]  # position t gets token t - d
    return tokens, targets


def make_multi_recall_data(
    num_examples: int,
    seq_len: int,
    distances: tuple[int, ...],
    *,
    num_symbols: int = 16,
    ignore_index: int = -100,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate random sequences whose targets at each position are the tokens several steps back.

    Several lookups at once: target ``[n, t, i]`` is ``tokens[n, t - distances[i]]``, and
    ``ignore_index`` where ``t < distances[i]``. The tokens are those of ``make_recall_data``
    with the same sizes and seed, so each lookup alone is that task; together they need one
    attention distribution per distance (chapter 04: one head per lookup).

    Args:
        num_examples: number of sequences ``N``.
        seq_len: tokens per sequence ``T``; must exceed every distance.
        distances: the ``K`` distances, each ``>= 1``.
        num_symbols: vocabulary size ``V``; tokens are ``0 .. V - 1`` (keyword only).
        ignore_index: target where a distance reaches before the start (keyword only).
        seed: seed of the ``torch.Generator`` that draws the tokens (keyword only).

    Returns:
        ``(tokens, targets)``, both ``torch.long``.

    Shapes:
        -> tokens ``(N, T)``, targets ``(N, T, K)``.

    Introduced in chapter 04 (multi-head attention).
    """
    if isinstance(distances, int) or not distances:
        raise ValueError(
            f"distances must be a non-empty tuple of ints, such as (1, 3), got {distances!r}"
        )
    distances = tuple(distances)
    for d in distances:
        check_int("each distance", d, 1)
    tokens, _ = make_recall_data(
        num_examples, seq_len, max(distances), num_symbols=num_symbols,
        ignore_index=ignore_index, seed=seed,
    )  # fmt: skip
    targets = torch.full((*tokens.shape, len(distances)), ignore_index)  # (N, T, K)
    for i, d in enumerate(distances):
        targets[:, d:, i] = tokens[:, :-d]  # position t gets token t - d
    return tokens, targets


def make_retrieval_data(
    num_examples: int,
    *,
    num_pairs: int = 16,
    num_keys: int = 32,
    num_values: int = 16,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Generate key-value retrieval sequences: ``num_pairs`` pairs, then a query for one key.

    Each of the first ``num_pairs`` tokens carries a key (distinct within a sequence) and a
    value; the last token carries one of those keys and the value id ``num_values`` ("none").
    The target is the value stored with the queried key. A token is two ids, embedded and
    summed by the model. Data are deterministic given ``seed``.

    Args:
        num_examples: ``N``.
        num_pairs: pairs per sequence, ``T = num_pairs + 1`` tokens (keyword only).
        num_keys: key vocabulary; at least ``num_pairs`` (keyword only).
        num_values: value vocabulary; the id ``num_values`` marks the query (keyword only).
        seed: seed of the ``torch.Generator`` (keyword only).

    Returns:
        ``(key_ids, value_ids, targets)``, all ``torch.long``.

    Shapes:
        -> key_ids ``(N, T)``, value_ids ``(N, T)``, targets ``(N,)``.

    Introduced in chapter 14 (graphs and attention families).
    """
    check_int("num_examples", num_examples)
    check_int("num_pairs", num_pairs)
    check_int("num_keys", num_keys, num_pairs)
    check_int("num_values", num_values, 2)
    check_int("seed", seed, 0)
    gen = torch.Generator().manual_seed(seed)
    rows = torch.arange(num_examples)
    keys = torch.rand(num_examples, num_keys, generator=gen).argsort(dim=1)[:, :num_pairs]
    values = torch.randint(0, num_values, (num_examples, num_pairs), generator=gen)
    pick = torch.randint(0, num_pairs, (num_examples,), generator=gen)  # the queried pair
    key_ids = torch.cat((keys, keys[rows, pick, None]), dim=1)  # (N, T)
    none = torch.full((num_examples, 1), num_values)
    value_ids = torch.cat((values, none), dim=1)  # (N, T)
    return key_ids, value_ids, values[rows, pick]
