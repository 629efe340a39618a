"""The chapter 14 checker: a right GAT head passes, each usual mistake is named."""

import pytest
import torch
import torch.nn.functional as F

from attention.checks.graph import check_gat_head


def gat_head(loops=True, mask=True, axis=-1, leaky=True, swap=False, slope=0.2, transpose=False):
    def fn(x, adj, weight, a_src, a_dst):
        if swap:
            a_src, a_dst = a_dst, a_src
        adj = adj.T if transpose else adj
        h = x @ weight
        scores = (h @ a_dst)[:, None] + (h @ a_src)[None, :]
        scores = F.leaky_relu(scores, slope) if leaky else scores
        allowed = adj | torch.eye(len(adj), dtype=torch.bool) if loops else adj
        if mask:
            scores = scores.masked_fill(~allowed, float("-inf"))
        weights = torch.softmax(scores, dim=axis)
        return weights @ h, weights

    return fn


def test_gat_head_checker_passes_a_right_answer(capsys):
    check_gat_head(gat_head())
    assert "all 3 random graphs" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("fn", "diagnosis"),
    [
        (gat_head(mask=False), "softmax runs over all nodes"),
        (gat_head(loops=False), "add self-loops"),
        (gat_head(axis=0), "wrong axis"),
        (gat_head(leaky=False), "LeakyReLU"),
        (gat_head(swap=True), "halves of a are swapped"),
        (gat_head(slope=0.01), "default negative slope 0.01"),
        (gat_head(transpose=True), "the mask is transposed"),
    ],
)
def test_gat_head_checker_names_the_mistake(fn, diagnosis):
    with pytest.raises(AssertionError, match=diagnosis):
        check_gat_head(fn)
