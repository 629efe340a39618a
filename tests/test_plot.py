"""attention.plot: labelled attention maps, grids of maps and curves."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from attention import plot_attention, plot_curves, scaled_dot_product_attention, show_heatmaps


def tick_texts(labels) -> list[str]:
    return [t.get_text() for t in labels]


def colorbars(fig: Figure) -> list[Axes]:
    return [a for a in fig.axes if a.get_label() == "<colorbar>"]


def map_axes(fig: Figure) -> list[Axes]:
    return [a for a in fig.axes if a.images and a.get_label() != "<colorbar>"]


# ----------------------------------------------------------------------------- plot_attention


def test_plot_attention_returns_axes_with_labels_title_and_colorbar():
    weights = torch.softmax(torch.randn(3, 4), dim=-1)
    ax = plot_attention(weights, list("abcd"), ["x", "y", "z"], title="Toy attention")
    assert isinstance(ax, Axes)
    assert tick_texts(ax.get_xticklabels()) == list("abcd")
    assert tick_texts(ax.get_yticklabels()) == ["x", "y", "z"]
    assert ax.get_title() == "Toy attention"
    assert ax.get_xlabel() == "key position (attended to)"
    assert ax.get_ylabel() == "query position (attending)"
    (bar,) = colorbars(ax.figure)
    assert bar.get_ylabel() == "weight"
    np.testing.assert_allclose(ax.images[0].get_array(), weights.numpy(), rtol=1e-6)


def test_plot_attention_draws_on_given_axes_without_colorbar():
    fig, ax = plt.subplots()
    out = plot_attention(torch.rand(2, 2), ax=ax, colorbar=False, xlabel="k", ylabel="q")
    assert out is ax
    assert colorbars(fig) == []
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("k", "q")


def test_plot_attention_accepts_tensor_requiring_grad():
    q, k, v = (torch.randn(1, 4, 8, requires_grad=True) for _ in range(3))
    _, weights = scaled_dot_product_attention(q, k, v)
    assert weights.requires_grad
    ax = plot_attention(weights)  # (1, 4, 4): the leading 1 is squeezed
    assert ax.images[0].get_array().shape == (4, 4)


def test_plot_attention_annotates_each_cell():
    ax = plot_attention(torch.tensor([[0.25, 0.75], [1.0, 0.0]]), annotate=True)
    assert sorted(t.get_text() for t in ax.texts) == ["0.00", "0.25", "0.75", "1.00"]


def test_plot_attention_squeezes_leading_ones():
    ax = plot_attention(torch.rand(1, 1, 3, 5))
    assert ax.images[0].get_array().shape == (3, 5)


def test_plot_attention_accepts_numpy_and_lists():
    assert plot_attention(np.eye(3)).images[0].get_array().shape == (3, 3)
    assert plot_attention([[0.5, 0.5], [1.0, 0.0]]).images[0].get_array().shape == (2, 2)


@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 2, 3, 4), (4,)])
def test_plot_attention_rejects_non_squeezable_shapes(shape):
    with pytest.raises(ValueError, match=r"draws one \(T, S\) map, got shape .*show_heatmaps"):
        plot_attention(torch.rand(shape))


def test_plot_attention_rejects_3d_list_with_value_error():
    # Regression: the error message read weights.shape, so a list raised AttributeError.
    with pytest.raises(ValueError, match=r"draws one \(T, S\) map, got shape \(2, 1, 2\)"):
        plot_attention([[[0.5, 0.5]], [[1.0, 0.0]]])


def test_plot_attention_rejects_wrong_label_counts():
    with pytest.raises(ValueError, match=r"x_labels has 3 labels but the map has 4"):
        plot_attention(torch.rand(2, 4), x_labels=list("abc"))
    with pytest.raises(ValueError, match=r"y_labels has 1 labels but the map has 2"):
        plot_attention(torch.rand(2, 4), y_labels=["a"])


def test_plot_attention_colour_scale_defaults_to_the_largest_weight_and_vmax_fixes_it():
    weights = torch.tensor([[0.1, 0.3], [0.2, 0.05]])
    assert plot_attention(weights).images[0].get_clim() == pytest.approx((0.0, 0.3))
    fig, (left, right) = plt.subplots(1, 2)
    for ax, w in [(left, weights), (right, 2 * weights)]:  # two maps, one scale
        plot_attention(w, ax=ax, colorbar=False, vmax=1.0, annotate=True)
        assert ax.images[0].get_clim() == (0.0, 1.0)
    assert {t.get_color() for t in left.texts} == {"white"}, "no weight reaches 0.6 of vmax"


@pytest.mark.parametrize("vmax", [0.0, -1.0])
def test_plot_attention_rejects_a_vmax_that_is_not_positive(vmax):
    with pytest.raises(ValueError, match=r"vmax must be positive"):
        plot_attention(torch.rand(2, 2), vmax=vmax)


@pytest.mark.parametrize("dtype", [torch.bool, torch.complex64])
def test_plot_attention_rejects_non_real_weights(dtype):
    with pytest.raises(ValueError, match=rf"weights must be real numbers, got dtype {dtype}"):
        plot_attention(torch.ones(2, 2, dtype=dtype))


# ----------------------------------------------------------------------------- show_heatmaps


def test_show_heatmaps_grid_has_rows_times_cols_maps_at_most_two_side_by_side():
    fig = show_heatmaps(
        torch.rand(2, 3, 4, 5, requires_grad=True),
        x_labels=list("abcde"),
        y_labels=list("wxyz"),
        row_titles=["layer 1", "layer 2"],
        col_titles=["head 1", "head 2", "head 3"],
        title="Heads",
    )
    assert isinstance(fig, Figure)
    maps = [a for a in map_axes(fig) if a.get_visible()]
    assert len(maps) == 6
    assert len(colorbars(fig)) == 1, "one shared colour bar"
    assert fig.get_suptitle() == "Heads"
    grid = maps[0].get_subplotspec().get_gridspec()
    assert (grid.nrows, grid.ncols) == (4, 2), "3 heads per layer wrap onto two lines of two"
    assert [a.get_title() for a in maps] == [
        f"layer {r}, head {h}" for r in (1, 2) for h in (1, 2, 3)
    ]
    left = [a for a in maps if a.get_subplotspec().colspan.start == 0]
    assert all(a.get_ylabel() == "query" for a in left)
    assert tick_texts(left[0].get_yticklabels()) == list("wxyz")
    bottom = [a for a in maps if a.get_xlabel() == "key"]
    assert len(bottom) == 2, "the lowest visible map of each column carries the key labels"
    assert all(tick_texts(a.get_xticklabels()) == list("abcde") for a in bottom)
    assert all(m.images[0].get_array().shape == (4, 5) for m in maps)


def test_show_heatmaps_one_row_of_four_heads_becomes_two_by_two():
    fig = show_heatmaps(torch.rand(4, 3, 3), col_titles=[f"head {h}" for h in range(1, 5)])
    maps = map_axes(fig)
    grid = maps[0].get_subplotspec().get_gridspec()
    assert (grid.nrows, grid.ncols) == (2, 2)
    assert [a.get_title() for a in maps] == ["head 1", "head 2", "head 3", "head 4"]


def test_show_heatmaps_thins_labels_that_would_not_fit():
    tokens = [f"t{i}" for i in range(48)]
    fig = show_heatmaps(torch.rand(48, 48), tokens, tokens)
    (ax,) = map_axes(fig)
    shown = tick_texts(ax.get_yticklabels())
    assert 4 <= len(shown) < 48 and shown[0] == "t0"
    step = int(shown[1][1:])
    assert shown == tokens[::step], "every k-th label, starting from the first"


def test_show_heatmaps_rejects_more_than_two_maps_side_by_side():
    with pytest.raises(ValueError, match=r"max_cols must be 1 or 2, got 3"):
        show_heatmaps(torch.rand(3, 2, 2), max_cols=3)


def test_show_heatmaps_maps_are_the_weights_on_a_shared_scale():
    weights = torch.rand(2, 2, 3, 3)
    maps = map_axes(show_heatmaps(weights))
    for i, ax in enumerate(maps):
        np.testing.assert_allclose(ax.images[0].get_array(), weights[i // 2, i % 2].numpy())
        assert ax.images[0].get_clim() == pytest.approx((0.0, float(weights.max())))


def test_show_heatmaps_draws_other_values_with_vmin_vmax_and_a_colorbar_label():
    bias = torch.tensor([[0.0, float("nan")], [-0.5, 0.0]]).expand(2, 2, 2)  # NaN: masked
    fig = show_heatmaps(bias, vmin=-0.5, vmax=0.0, colorbar_label="bias")
    assert all(a.images[0].get_clim() == (-0.5, 0.0) for a in map_axes(fig))
    assert colorbars(fig)[0].get_ylabel() == "bias"
    with pytest.raises(ValueError, match=r"vmax must be above vmin"):
        show_heatmaps(torch.rand(2, 2), vmin=1.0, vmax=0.5)


@pytest.mark.parametrize(("shape", "n_maps"), [((4, 5), 1), ((3, 4, 5), 3), ((1, 1, 4, 5), 1)])
def test_show_heatmaps_accepts_fewer_dims(shape, n_maps):
    fig = show_heatmaps(torch.rand(shape))
    assert len(map_axes(fig)) == n_maps


@pytest.mark.parametrize("shape", [(5,), (1, 2, 3, 4, 5)])
def test_show_heatmaps_rejects_bad_ndim(shape):
    with pytest.raises(ValueError, match=r"expects \(rows, cols, T, S\), got shape"):
        show_heatmaps(torch.rand(shape))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x_labels": ["a"]}, r"x_labels has 1 labels but the map has 5"),
        ({"y_labels": list("abcde")}, r"y_labels has 5 labels but the map has 4"),
        ({"row_titles": ["r"]}, r"row_titles has 1 labels but the map has 2"),
        ({"col_titles": ["c"] * 4}, r"col_titles has 4 labels but the map has 3"),
    ],
)
def test_show_heatmaps_rejects_wrong_label_counts(kwargs, match):
    with pytest.raises(ValueError, match=match):
        show_heatmaps(torch.rand(2, 3, 4, 5), **kwargs)


# ----------------------------------------------------------------------------- plot_curves


def test_plot_curves_labels_title_and_legend():
    x = [16, 64, 256]
    ax = plot_curves(
        x,
        {"unscaled": torch.tensor([16.0, 64.0, 256.0]), "scaled": [1.0, 1.0, 1.0]},
        xlabel="Dk",
        ylabel="Var(q.k)",
        title="Variance of q.k",
        logx=True,
        logy=True,
    )
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == (
        "Dk",
        "Var(q.k)",
        "Variance of q.k",
    )
    assert tick_texts(ax.get_legend().get_texts()) == ["unscaled", "scaled"]
    assert [line.get_label() for line in ax.get_lines()] == ["unscaled", "scaled"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [16, 64, 256])
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")


def test_plot_curves_without_markers_on_given_axes():
    _, ax = plt.subplots()
    out = plot_curves(
        [0, 1], {"a": [1, 2]}, xlabel="x", ylabel="y", title="t", ax=ax, markers=False
    )
    assert out is ax
    assert ax.get_lines()[0].get_marker() in (None, "None", "")


def test_plot_curves_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"curve 'b' has shape \(2,\) but x has shape \(3,\)"):
        plot_curves([1, 2, 3], {"a": [1, 2, 3], "b": [1, 2]}, xlabel="x", ylabel="y", title="t")


def test_plot_curves_rejects_2d_x_and_no_curves():
    with pytest.raises(ValueError, match=r"x must be 1-D and curves non-empty"):
        plot_curves([[1, 2]], {"a": [1, 2]}, xlabel="x", ylabel="y", title="t")
    with pytest.raises(ValueError, match=r"x must be 1-D and curves non-empty, .* 0 curves"):
        plot_curves([1, 2], {}, xlabel="x", ylabel="y", title="t")


def test_plot_curves_requires_axis_labels_and_title():
    with pytest.raises(TypeError, match="xlabel"):
        plot_curves([1, 2], {"a": [1, 2]})  # type: ignore[call-arg]


def test_plot_curves_draws_dashed_curves_without_markers():
    ax = plot_curves(
        [1, 2, 3],
        {"measured": [1.1, 2.0, 2.9], "theory": [1, 2, 3]},
        xlabel="x",
        ylabel="y",
        title="t",
        dashed=["theory"],
    )
    measured, theory = ax.get_lines()
    assert theory.get_linestyle() == "--" and theory.get_marker() in (None, "None", "")
    assert measured.get_linestyle() == "-" and measured.get_marker() == "o"


def test_plot_curves_rejects_dashed_name_that_is_not_a_curve():
    with pytest.raises(ValueError, match=r"dashed names curves that do not exist: \['theroy'\]"):
        plot_curves(
            [1, 2], {"theory": [1, 2]}, xlabel="x", ylabel="y", title="t", dashed=["theroy"]
        )
