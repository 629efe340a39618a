"""Tests of attention.long_range: path lengths, receptive fields, the recall task (chapter 10)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from attention import LAYER_TYPES, make_recall_data, max_path_length, receptive_field


def stacked_path_length(n: int, connects) -> int:
    """Layers needed before output n-1 depends on input 0, by boolean matrix products.

    ``connects(layer_index)`` returns the (n, n) bool matrix of one layer: [j, i] = output j
    reads input i. Independent of the closed forms under test.
    """
    reach = torch.eye(n, dtype=torch.bool)
    for layers in range(1, n + 1):
        reach = (connects(layers - 1).double() @ reach.double()) > 0  # (n, n)
        if reach[n - 1, 0]:
            return layers
    raise AssertionError("never connected")


def window(n: int, back: int, step: int = 1) -> torch.Tensor:
    """Output j reads inputs j, j - step, ..., j - back (causal, strided by step)."""
    offset = torch.arange(n)[:, None] - torch.arange(n)[None, :]  # (n, n): j - i
    return (offset >= 0) & (offset <= back) & (offset % step == 0)


def recurrent_path_length(n: int) -> int:
    """Shortest route x_0 -> h_{n-1} in the unrolled recurrence, by breadth-first search."""
    edges = {("x", i): [("h", i)] for i in range(n)}
    edges.update({("h", i): [("h", i + 1)] for i in range(n - 1)})
    frontier, steps = [("x", 0)], 0
    while ("h", n - 1) not in frontier:
        frontier, steps = [b for a in frontier for b in edges.get(a, [])], steps + 1
    return steps


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 70), k=st.integers(2, 6))
def test_path_lengths_equal_search_on_the_connection_graph(n, k) -> None:
    assert max_path_length("attention", n) == stacked_path_length(n, lambda _: window(n, n))
    assert max_path_length("recurrent", n) == recurrent_path_length(n)
    contiguous = stacked_path_length(n, lambda _: window(n, k - 1))
    assert max_path_length("convolution", n, k) == contiguous
    dilated = stacked_path_length(n, lambda layer: window(n, (k - 1) * k**layer, k**layer))
    assert max_path_length("dilated", n, k) == dilated
    assert max_path_length("restricted", n, k) == contiguous  # a window of r = k keys


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 3000), k=st.integers(2, 9))
def test_convolution_path_length_is_the_fewest_layers_whose_receptive_field_covers_n(n, k) -> None:
    layers = max_path_length("convolution", n, k)
    assert receptive_field(k, [1] * layers) >= n > receptive_field(k, [1] * (layers - 1))
    layers = max_path_length("dilated", n, k)
    dilations = [k**i for i in range(layers)]
    assert receptive_field(k, dilations) == k**layers >= n > k ** (layers - 1)


@pytest.mark.parametrize(("n", "k", "layers"), [(125, 5, 3), (216, 6, 3), (243, 3, 5), (126, 5, 4)])
def test_dilated_path_length_is_exact_where_a_float_logarithm_is_not(n, k, layers) -> None:
    assert max_path_length("dilated", n, k) == layers


def test_path_lengths_grow_as_table_1_says() -> None:
    ns = [8, 64, 512, 4096]
    assert [max_path_length("attention", n) for n in ns] == [1, 1, 1, 1]
    assert [max_path_length("recurrent", n) for n in ns] == ns
    assert [max_path_length("convolution", n, 3) for n in ns] == [4, 32, 256, 2048]
    assert [max_path_length("dilated", n, 2) for n in ns] == [3, 6, 9, 12]
    assert [max_path_length("restricted", n, 8) for n in ns] == [1, 9, 73, 585]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("lstm", 8), "layer must be one of"),
        (("attention", 1), "n must be an int >= 2"),
        (("recurrent", 8.0), "n must be an int >= 2"),
        (("convolution", 8), "needs the kernel width"),
        (("dilated", 8, 1), "k must be an int >= 2"),
    ],
)
def test_max_path_length_rejects_bad_arguments(args, message) -> None:
    with pytest.raises(ValueError, match=message):
        max_path_length(*args)


@pytest.mark.parametrize(
    ("kernel_size", "dilations"), [(3, [1, 1, 1]), (2, [1, 2, 4, 8]), (3, [1, 3, 9]), (4, [2])]
)
def test_receptive_field_equals_what_autograd_sees_through_conv1d(kernel_size, dilations) -> None:
    T = 100
    x = torch.randn(1, 2, T, dtype=torch.float64, requires_grad=True)  # (B, C, T)
    h = x
    for d in dilations:
        conv = nn.Conv1d(2, 2, kernel_size, dilation=d, dtype=torch.float64)
        h = conv(F.pad(h, ((kernel_size - 1) * d, 0)))  # causal: pad on the left only
    h[0, :, T - 1].sum().backward()  # the last output
    seen = (x.grad[0].abs().sum(dim=0) > 0).nonzero().flatten()  # input positions it depends on
    assert seen.max() == T - 1
    assert T - seen.min() == receptive_field(kernel_size, dilations)


def test_receptive_field_rejects_bad_sizes() -> None:
    assert receptive_field(5, []) == 1
    with pytest.raises(ValueError, match="kernel_size must be a positive int"):
        receptive_field(0, [1])
    with pytest.raises(ValueError, match="each dilation must be a positive int"):
        receptive_field(3, [1, 0])


# ----------------------------------------------------------------------------- recall data


@settings(max_examples=30, deadline=None)
@given(distance=st.integers(1, 20), extra=st.integers(1, 20), symbols=st.integers(2, 30))
def test_recall_targets_are_the_tokens_distance_steps_back(distance, extra, symbols) -> None:
    T = distance + extra
    tokens, targets = make_recall_data(7, T, distance, num_symbols=symbols, seed=1)
    assert tokens.shape == targets.shape == (7, T)
    assert tokens.dtype == targets.dtype == torch.long
    assert 0 <= tokens.min() and tokens.max() < symbols
    assert (targets[:, :distance] == -100).all()
    for t in range(distance, T):
        assert torch.equal(targets[:, t], tokens[:, t - distance])


def test_recall_data_is_deterministic_by_seed_and_ignores_the_global_seed() -> None:
    torch.manual_seed(0)
    a = make_recall_data(20, 10, 3, seed=5)
    torch.manual_seed(123)
    b = make_recall_data(20, 10, 3, seed=5)
    c = make_recall_data(20, 10, 3, seed=6)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


def test_recall_tokens_are_uniform_so_guessing_gives_one_over_v() -> None:
    tokens, _ = make_recall_data(2000, 50, 1, num_symbols=16, seed=0)
    freq = torch.bincount(tokens.flatten(), minlength=16).double() / tokens.numel()
    torch.testing.assert_close(
        freq, torch.full((16,), 1 / 16, dtype=torch.float64), atol=3e-3, rtol=0
    )


def test_recall_data_custom_ignore_index_works_with_cross_entropy() -> None:
    tokens, targets = make_recall_data(4, 6, 2, num_symbols=5, ignore_index=-1)
    assert (targets[:, :2] == -1).all()
    logits = torch.zeros(4, 6, 5)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
    torch.testing.assert_close(loss, torch.log(torch.tensor(5.0)))  # uniform guess on real ones


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seq_len": 4, "distance": 4}, "seq_len must be an int >= 5"),
        ({"seq_len": 8, "distance": 0}, "distance must be a positive int"),
        ({"seq_len": 8, "distance": 2, "num_symbols": 1}, "num_symbols must be an int >= 2"),
        ({"seq_len": 8, "distance": 2, "ignore_index": 3}, "ignore_index=3 is a token id"),
        ({"seq_len": 8, "distance": 2, "seed": -1}, "seed must be a non-negative int"),
    ],
)
def test_recall_data_rejects_bad_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        make_recall_data(3, **kwargs)


def test_layer_types_are_those_of_table_1() -> None:
    assert LAYER_TYPES == ("attention", "recurrent", "convolution", "dilated", "restricted")
