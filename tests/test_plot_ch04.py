"""attention.plot_head_split: the picture of chapter 04's head split is computed, not drawn."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from attention import plot_head_split


def map_axes(fig: Figure) -> list:
    """The axes that hold a map, in drawing order: the (T, D) map, then one per head and split."""
    return [ax for sub in fig.subfigs for ax in sub.axes if ax.images]


def feature_indices(ax) -> np.ndarray:
    """The feature index written in each cell, as a (rows, cols) array."""
    rows, cols = ax.images[0].get_array().shape
    cells = {
        (round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text())
        for t in ax.texts
    }
    return np.array([[cells[i, j] for j in range(cols)] for i in range(rows)])


def row_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def test_plot_head_split_right_split_gives_every_head_all_tokens_and_its_own_features():
    tokens = ["the", "cat", "sat", "on", "the", "mat"]
    fig = plot_head_split(6, 12, 3, tokens, title="Heads split the features")
    assert isinstance(fig, Figure)
    assert fig.get_suptitle() == "Heads split the features"
    whole, *heads = map_axes(fig)
    assert len(heads) == 2 * 3, "three maps for the right split, three for the wrong one"
    np.testing.assert_array_equal(feature_indices(whole), np.tile(np.arange(12), (6, 1)))
    for h, ax in enumerate(heads[:3]):
        assert row_labels(ax) == tokens, "every head sees every token"
        np.testing.assert_array_equal(
            feature_indices(ax), np.tile(np.arange(4 * h, 4 * h + 4), (6, 1))
        )
        np.testing.assert_array_equal(ax.images[0].get_array(), np.full((6, 4), h))  # one colour
        assert ax.get_title() == f"head {h + 1}"  # the (T, Dh) shape is in the row's heading
    assert "(T, Dh) = (6, 4)" in fig.subfigs[1]._suptitle.get_text()


def test_plot_head_split_wrong_split_gives_each_head_a_slice_of_the_tokens():
    fig = plot_head_split(6, 12, 3, ["a", "b", "c", "d", "e", "f"])
    wrong = map_axes(fig)[4:]
    assert [row_labels(ax) for ax in wrong] == [
        ["a", "a", "a", "b", "b", "b"],
        ["c", "c", "c", "d", "d", "d"],
        ["e", "e", "e", "f", "f", "f"],
    ]
    for ax in wrong:  # each "head" mixes the features of all three heads
        np.testing.assert_array_equal(np.unique(ax.images[0].get_array()), [0, 1, 2])


def test_plot_head_split_without_wrong_row_and_default_labels():
    fig = plot_head_split(3, 8, 2, show_wrong=False)
    maps = map_axes(fig)
    assert len(maps) == 1 + 2
    assert row_labels(maps[1]) == ["token 0", "token 1", "token 2"]


def test_plot_head_split_single_head_owns_every_feature():
    whole, head, wrong = map_axes(plot_head_split(2, 4, 1))
    np.testing.assert_array_equal(feature_indices(head), feature_indices(whole))
    np.testing.assert_array_equal(feature_indices(wrong), feature_indices(whole))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((6, 12, 5), r"d_model=12 is not divisible by num_heads=5"),
        ((6, 128, 8), r"d_model=128 is too wide"),
        ((0, 12, 3), r"num_tokens must be a positive int, got 0"),
        ((6, 12, True), r"num_heads must be a positive int, got True"),
        ((6, 12.0, 3), r"d_model must be a positive int, got 12.0"),
    ],
)
def test_plot_head_split_rejects_bad_sizes(args, match):
    with pytest.raises(ValueError, match=match):
        plot_head_split(*args)


def test_plot_head_split_rejects_wrong_label_count():
    with pytest.raises(ValueError, match=r"token_labels has 2 labels but num_tokens=3"):
        plot_head_split(3, 4, 2, ["a", "b"])
