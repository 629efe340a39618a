"""attention.data.sequences: several lookups at once (chapter 04's two-head task)."""

import pytest
import torch

from attention import make_multi_recall_data, make_recall_data


@pytest.mark.parametrize("distances", [(1,), (1, 3), (3, 1), (2, 2, 5)])
def test_multi_recall_targets_are_the_tokens_each_distance_back(distances) -> None:
    tokens, targets = make_multi_recall_data(9, 8, distances, num_symbols=5, seed=2)
    assert tokens.shape == (9, 8) and targets.shape == (9, 8, len(distances))
    assert tokens.dtype == targets.dtype == torch.long
    assert 0 <= tokens.min() and tokens.max() < 5
    for i, d in enumerate(distances):
        assert (targets[:, :d, i] == -100).all()
        for t in range(d, 8):
            assert torch.equal(targets[:, t, i], tokens[:, t - d])


def test_multi_recall_tokens_are_those_of_recall_data_and_each_lookup_is_that_task() -> None:
    tokens, targets = make_multi_recall_data(20, 10, (1, 3), num_symbols=7, seed=4)
    for i, d in enumerate((1, 3)):
        one_tokens, one_targets = make_recall_data(20, 10, d, num_symbols=7, seed=4)
        assert torch.equal(tokens, one_tokens)
        assert torch.equal(targets[..., i], one_targets)


def test_multi_recall_data_is_deterministic_by_seed_and_ignores_the_global_seed() -> None:
    torch.manual_seed(0)
    a = make_multi_recall_data(20, 10, (1, 3), seed=5)
    torch.manual_seed(123)
    b = make_multi_recall_data(20, 10, (1, 3), seed=5)
    c = make_multi_recall_data(20, 10, (1, 3), seed=6)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


def test_multi_recall_data_custom_ignore_index() -> None:
    _, targets = make_multi_recall_data(3, 6, (2, 4), num_symbols=5, ignore_index=-1)
    assert (targets[:, :2, 0] == -1).all() and (targets[:, :4, 1] == -1).all()
    assert (targets[:, 4:] >= 0).all()


@pytest.mark.parametrize(
    ("distances", "seq_len", "match"),
    [
        ((), 8, "distances must be a non-empty tuple of ints"),
        (3, 8, "distances must be a non-empty tuple of ints"),
        ((1, 0), 8, "each distance must be a positive int, got 0"),
        ((1, 2.0), 8, "each distance must be a positive int, got 2.0"),
        ((1, 8), 8, "seq_len must be an int >= 9, got 8"),
    ],
)
def test_multi_recall_data_rejects_bad_distances(distances, seq_len, match) -> None:
    with pytest.raises(ValueError, match=match):
        make_multi_recall_data(4, seq_len, distances)
