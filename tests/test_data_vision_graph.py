"""The generated data of chapters 13 and 14: shapes, graphs and key-value retrieval."""

import pytest
import torch

from attention.data import (
    SHAPE_CLASSES,
    make_random_graph,
    make_retrieval_data,
    make_sbm_graph,
    make_shapes_data,
)


def test_shapes_data_is_deterministic_balanced_and_painted_where_the_mask_says():
    images, labels, masks = make_shapes_data(400, seed=3)
    again = make_shapes_data(400, seed=3)
    assert torch.equal(images, again[0]) and torch.equal(labels, again[1])
    assert images.shape == (400, 3, 24, 24) and masks.shape == (400, 24, 24)
    assert set(labels.tolist()) == set(range(len(SHAPE_CLASSES)))
    assert torch.bincount(labels).min() > 60
    painted = images.permute(0, 2, 3, 1)[masks]  # (pixels, 3): every channel >= 0.6 in size
    assert painted.abs().min() >= 0.6
    sizes = masks.flatten(1).sum(1)
    assert sizes.min() > 8  # every image holds a shape


def test_shapes_data_refuses_shapes_larger_than_the_image():
    with pytest.raises(ValueError, match="does not fit"):
        make_shapes_data(2, image_size=10, max_size=12)


def test_sbm_graph_is_symmetric_without_loops_and_homophilous():
    x, labels, adj = make_sbm_graph(400, num_classes=4, avg_degree=8, homophily=0.8, seed=0)
    assert x.shape == (400, 16) and labels.shape == (400,) and adj.dtype == torch.bool
    assert torch.equal(adj, adj.T) and not adj.diagonal().any()
    assert torch.bincount(labels).tolist() == [100] * 4
    assert 7 < adj.sum() / 400 < 9
    inside = (adj & (labels[:, None] == labels[None, :])).sum() / adj.sum()
    assert 0.75 < inside < 0.85


def test_random_graph_is_sparse_symmetric_with_the_mean_degree():
    adj = make_random_graph(1000, avg_degree=10, seed=0)
    assert adj.layout == torch.sparse_coo and adj.dtype == torch.bool
    dense = adj.to_dense()
    assert torch.equal(dense, dense.T) and not dense.diagonal().any()
    assert 9.5 < dense.sum() / 1000 <= 10


def test_retrieval_targets_are_the_values_stored_with_the_queried_key():
    keys, values, targets = make_retrieval_data(500, num_pairs=6, num_keys=10, seed=0)
    assert keys.shape == values.shape == (500, 7) and targets.shape == (500,)
    assert (values[:, -1] == 16).all()  # the query token carries the value id "none"
    for k, v, t in zip(keys, values, targets, strict=True):
        assert len(set(k[:-1].tolist())) == 6  # distinct keys
        (where,) = (k[:-1] == k[-1]).nonzero().flatten().tolist()
        assert v[where] == t
