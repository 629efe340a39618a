"""attention.positional (and its plots): each encoding against its formula, in float64."""

import math

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.axes import Axes
from torch.testing import assert_close

from attention import (
    LearnedPositionalEmbedding,
    RelativePositionBias,
    alibi_bias,
    alibi_slopes,
    plot_positional_encoding,
    plot_similarity_vs_distance,
    sinusoidal_positional_encoding,
)

F64 = torch.float64


def article_positional_embedding(d_model, max_len):
    """The article's Q18 code, as printed (only the line breaks differ)."""
    pe = torch.zeros(max_len, d_model)
    position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(
        torch.arange(0, d_model, 2).float()
        * (-torch.log(torch.tensor(10000.0)) / torch.tensor(d_model))
    )
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    pe = pe.unsqueeze(0)
    return pe


def pair_rotation(angles: torch.Tensor) -> torch.Tensor:
    """Block-diagonal matrix rotating each feature pair (2i, 2i+1) by angles[i] (float64)."""
    blocks = [
        torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) for a in angles
    ]
    return torch.block_diag(*blocks).to(F64)


# ----------------------------------------------------------------------------- sinusoidal


@pytest.mark.parametrize(("max_len", "d_model"), [(1, 2), (7, 4), (50, 16), (100, 512)])
def test_sinusoidal_matches_formula_loop_in_float64(max_len, d_model):
    loop = torch.empty(max_len, d_model, dtype=F64)
    for p in range(max_len):
        for i in range(d_model // 2):
            angle = p / 10000 ** (2 * i / d_model)
            loop[p, 2 * i], loop[p, 2 * i + 1] = math.sin(angle), math.cos(angle)
    pe = sinusoidal_positional_encoding(max_len, d_model, dtype=F64)
    assert pe.shape == (max_len, d_model) and pe.dtype == F64
    assert_close(pe, loop, atol=1e-12, rtol=0)


def test_sinusoidal_matches_article_q18_code_within_float32_rounding():
    article = article_positional_embedding(512, 100)
    assert article.shape == (1, 100, 512)
    ours = sinusoidal_positional_encoding(100, 512, dtype=F64)
    assert (article[0].double() - ours).abs().max() <= 1e-5


def test_sinusoidal_default_is_float32_and_row_zero_is_sin0_cos0():
    pe = sinusoidal_positional_encoding(3, 8)
    assert pe.dtype == torch.float32
    assert pe[0].tolist() == [0.0, 1.0] * 4


def test_sinusoidal_shift_is_a_rotation_and_dot_product_depends_on_distance_only():
    d_model, k = 32, 7
    pe = sinusoidal_positional_encoding(60, d_model, dtype=F64)
    angles = k / 10000 ** (torch.arange(0, d_model, 2, dtype=F64) / d_model)  # k * frequency
    rotation = pair_rotation(-angles)  # (sin a, cos a) -> (sin(a + b), cos(a + b)): turn by -b
    assert_close(pe[k:], pe[:-k] @ rotation.T)  # PE[p + k] = R_k PE[p] for every p
    dots = (pe[:-k] * pe[k:]).sum(dim=-1)  # PE[p] . PE[p + k]
    assert dots.std() < 1e-12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((10, 7), "d_model=7 must be even"),
        ((0, 8), "max_len must be a positive int, got 0"),
        ((8, -2), "d_model must be a positive int, got -2"),
        ((8.0, 4), "max_len must be a positive int, got 8.0"),
    ],
)
def test_sinusoidal_rejects_bad_sizes(args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        sinusoidal_positional_encoding(*args)


# ----------------------------------------------------------------------------- learned


def test_learned_embedding_adds_one_learned_row_per_position():
    layer = LearnedPositionalEmbedding(10, 4)
    x = torch.randn(2, 6, 4)
    out = layer(x)
    assert out.shape == (2, 6, 4)
    assert_close(out - x, layer.embedding.weight[:6].expand(2, 6, 4))
    assert sum(p.numel() for p in layer.parameters()) == 10 * 4
    out.sum().backward()
    assert layer.embedding.weight.grad[6:].abs().sum() == 0  # unused rows get no gradient


def test_learned_embedding_rejects_sequence_longer_than_max_len():
    layer = LearnedPositionalEmbedding(8, 4)
    layer(torch.randn(1, 8, 4))  # exactly max_len is fine
    with pytest.raises(ValueError, match=r"T=9 exceeds max_len=8.*positions 8\.\.8"):
        layer(torch.randn(1, 9, 4))


@pytest.mark.parametrize(
    ("args", "x_shape", "message"),
    [
        ((0, 4), None, "max_len must be a positive int, got 0"),
        ((8, 0), None, "d_model must be a positive int, got 0"),
        ((8, 4), (2, 3, 5), r"x must be \(\.\.\., T, d_model=4\), got \(2, 3, 5\)"),
        ((8, 4), (4,), r"x must be \(\.\.\., T, d_model=4\), got \(4,\)"),
    ],
)
def test_learned_embedding_errors_name_the_values(args, x_shape, message):
    with pytest.raises(ValueError, match=message):
        LearnedPositionalEmbedding(*args)(torch.randn(x_shape))


# ----------------------------------------------------------------------------- ALiBi


def authors_alibi_slopes(num_heads: int) -> list[float]:
    """The ALiBi authors' rule, written from its description (Press et al. 2022, §3 and code).

    A power of two H: the geometric sequence starting at 2^(-8/H) with ratio 2^(-8/H). Else:
    those of the closest lower power of two P, then every other slope (1st, 3rd, ...) of the
    2P-head rule, as many as needed.
    """
    if math.log2(num_heads).is_integer():
        start = 2.0 ** (-8.0 / num_heads)
        return [start ** (h + 1) for h in range(num_heads)]
    P = 2 ** math.floor(math.log2(num_heads))
    return authors_alibi_slopes(P) + authors_alibi_slopes(2 * P)[0::2][: num_heads - P]


def test_alibi_slopes_are_the_papers_geometric_sequence_for_powers_of_two():
    assert alibi_slopes(8).tolist() == [2.0**-h for h in range(1, 9)]
    for H in (1, 2, 4, 16, 32):
        expected = torch.tensor([2.0 ** (-8 * h / H) for h in range(1, H + 1)], dtype=F64)
        assert_close(alibi_slopes(H, dtype=F64), expected)


@pytest.mark.parametrize("H", range(1, 65))
def test_alibi_slopes_follow_the_authors_rule_for_every_head_count(H):
    expected = torch.tensor(authors_alibi_slopes(H), dtype=F64)
    assert_close(alibi_slopes(H, dtype=F64), expected, atol=0, rtol=1e-14)


def test_alibi_slopes_for_12_heads_are_those_bloom_and_mpt_compute():
    # 8-head slopes 2^-1 .. 2^-8, then the odd ones of 16 heads: 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5
    expected = [2.0**-h for h in range(1, 9)] + [2.0**-0.5, 2.0**-1.5, 2.0**-2.5, 2.0**-3.5]
    assert_close(alibi_slopes(12, dtype=F64), torch.tensor(expected, dtype=F64), atol=0, rtol=1e-15)
    assert alibi_slopes(12).tolist() != [2.0 ** (-8 * h / 12) for h in range(1, 13)]


def test_alibi_bias_matches_loop_and_is_zero_on_the_diagonal():
    H, T = 4, 6
    bias = alibi_bias(H, T, dtype=F64)
    assert bias.shape == (H, T, T)
    for h in range(H):
        slope = 2.0 ** (-8 * (h + 1) / H)
        for i in range(T):
            for j in range(i + 1):
                assert bias[h, i, j] == -slope * (i - j)
    assert torch.equal(bias, bias.transpose(-2, -1))  # mirror image above the diagonal
    assert (bias.diagonal(dim1=-2, dim2=-1) == 0).all() and not torch.signbit(bias).all()


def test_alibi_bias_with_cache_is_the_last_rows_of_the_full_bias():
    assert torch.equal(alibi_bias(8, 3, 10), alibi_bias(8, 10)[:, -3:])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((8, 5, 3), "S=3 keys is fewer than T=5 queries"),
        ((0, 5), "num_heads must be a positive int, got 0"),
        ((8, 0), "T must be a positive int, got 0"),
        ((8, 2, -1), "S must be a positive int, got -1"),
    ],
)
def test_alibi_errors_name_the_values(args, message):
    with pytest.raises(ValueError, match=message):
        alibi_bias(*args)


# ----------------------------------------------------------------------------- T5 relative bias


def mesh_tf_bucket(offset: int, bidirectional: bool, num_buckets: int, max_distance: int) -> int:
    """T5's bucket rule written out for one offset (key minus query), in float32 as T5 does."""
    bucket, n = 0, num_buckets
    if bidirectional:
        n //= 2
        bucket += n if offset > 0 else 0
        distance = abs(offset)
    else:
        distance = max(-offset, 0)
    max_exact = n // 2
    if distance < max_exact:
        return bucket + distance
    large = torch.tensor(distance / max_exact, dtype=torch.float32).log()
    large = max_exact + int(large / math.log(max_distance / max_exact) * (n - max_exact))
    return bucket + min(large, n - 1)


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize(("num_buckets", "max_distance"), [(32, 128), (16, 20), (8, 16)])
def test_relative_buckets_match_the_t5_rule(bidirectional, num_buckets, max_distance):
    module = RelativePositionBias(2, num_buckets, max_distance, bidirectional)
    T = S = 300
    buckets = module.buckets(T, S)
    offsets = range(-S + 1, S)
    expected = {o: mesh_tf_bucket(o, bidirectional, num_buckets, max_distance) for o in offsets}
    for i in (0, 150, T - 1):
        assert buckets[i].tolist() == [expected[j - i] for j in range(S)]
    assert 0 <= buckets.min() and buckets.max() < num_buckets


def test_relative_buckets_are_exact_near_and_shared_far():
    module = RelativePositionBias(1, num_buckets=32, max_distance=128, bidirectional=False)
    row = module.buckets(1, 400)[0].flip(0)  # distances 0, 1, 2, ... back from the query
    assert row[:16].tolist() == list(range(16))
    assert (row[128:] == 31).all()  # every distance from max_distance on shares the last bucket
    assert (row.diff() >= 0).all() and row.unique().numel() == 32  # wider and wider, all used
    assert (module.buckets(5, 5).triu(1) == 0).all()  # future keys count as offset 0


def test_relative_bias_shape_and_translation_invariance():
    module = RelativePositionBias(3, num_buckets=8, max_distance=16)
    bias = module(7, 12)
    assert bias.shape == (3, 7, 12)
    assert_close(bias[:, 1:, 1:], bias[:, :-1, :-1])  # same offset, same bias
    assert_close(module(12)[:, -7:], bias)  # queries are the last T keys
    bias.sum().backward()
    assert module.relative_attention_bias.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_heads": 0}, "num_heads must be a positive int, got 0"),
        ({"num_heads": 2, "num_buckets": 2}, r"num_buckets=2 \(bidirectional=True\) gives 0"),
        ({"num_heads": 2, "num_buckets": 8, "max_distance": 2}, "max_distance=2 must exceed it"),
        ({"num_heads": 2, "max_distance": 0}, "max_distance must be a positive int, got 0"),
    ],
)
def test_relative_bias_errors_name_the_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RelativePositionBias(**kwargs)


def test_relative_bias_rejects_fewer_keys_than_queries():
    with pytest.raises(ValueError, match="S=2 keys is fewer than T=4 queries"):
        RelativePositionBias(2)(4, 2)


# ----------------------------------------------------------------------------- plots


def test_plot_positional_encoding_draws_symmetric_heatmap_and_squeezes_batch_dim():
    pe = article_positional_embedding(16, 20)  # (1, 20, 16)
    ax = plot_positional_encoding(pe, title="PE")
    assert isinstance(ax, Axes) and ax.get_title() == "PE"
    assert ax.get_xlabel().startswith("feature") and ax.get_ylabel() == "position"
    image = ax.get_images()[0]
    assert image.get_array().shape == (20, 16)
    low, high = image.get_clim()
    assert low == -high and high == pytest.approx(1.0)
    assert len(ax.figure.axes) == 2  # the map and its colour bar


def test_plot_positional_encoding_rejects_a_stack_of_tables():
    with pytest.raises(ValueError, match=r"one \(max_len, D\) table, got shape \(2, 5, 4\)"):
        plot_positional_encoding(torch.zeros(2, 5, 4))


def test_plot_similarity_vs_distance_draws_one_curve_per_table():
    tables = {
        "d=64": sinusoidal_positional_encoding(50, 64),
        "d=8": sinusoidal_positional_encoding(50, 8),
    }
    _, ax = plt.subplots()
    assert plot_similarity_vs_distance(tables, anchor=5, cosine=True, ax=ax) is ax
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["d=64", "d=8"]
    assert all(len(line.get_xdata()) == 45 for line in lines)
    assert lines[0].get_ydata()[0] == pytest.approx(1.0)  # a position is its own best match
    assert "cosine" in ax.get_ylabel() and ax.get_title()


def test_plot_similarity_vs_distance_dot_product_of_sinusoids_is_d_over_2_at_zero():
    ax = plot_similarity_vs_distance(sinusoidal_positional_encoding(10, 16))
    assert ax.get_lines()[0].get_ydata()[0] == pytest.approx(8.0)  # sin^2 + cos^2 per pair


@pytest.mark.parametrize(
    ("encodings", "kwargs", "message"),
    [
        ({}, {}, "encodings is empty"),
        (torch.zeros(5, 4), {"anchor": 5}, r"0 <= anchor=5 < max_len, got shape \(5, 4\)"),
        (torch.zeros(5), {}, r"got shape \(5,\)"),
    ],
)
def test_plot_similarity_vs_distance_errors_name_the_values(encodings, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot_similarity_vs_distance(encodings, **kwargs)
