"""GCN and GAT layers against hand-written references, dense and sparse (chapter 14)."""

import math

import pytest
import torch
import torch.nn.functional as F

from attention import scaled_dot_product_attention
from attention.graph import GATLayer, GCNLayer, complete_graph, normalized_adjacency


def random_graph(N: int, p: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    upper = (torch.rand(N, N, generator=gen) < p).triu(1)
    return upper | upper.T  # symmetric, no self-loops


def neighbours(adj: torch.Tensor, i: int) -> list[int]:
    return sorted(set(adj[i].nonzero().flatten().tolist()) | {i})  # with the self-loop


@pytest.mark.parametrize("seed", [0, 1])
def test_normalized_adjacency_is_one_over_sqrt_degrees(seed):
    adj = random_graph(12, 0.3, seed)
    a_hat = normalized_adjacency(adj, dtype=torch.float64)
    deg = adj.sum(1).double() + 1  # with the self-loop
    for i in range(12):
        for j in range(12):
            expected = 1 / math.sqrt(deg[i] * deg[j]) if (adj[i, j] or i == j) else 0.0
            assert a_hat[i, j].item() == pytest.approx(expected, abs=1e-15)
    sparse = normalized_adjacency(adj.to_sparse(), dtype=torch.float64)
    torch.testing.assert_close(sparse.to_dense(), a_hat)


@pytest.mark.parametrize("seed", [0, 1])
def test_gcn_matches_a_loop_over_neighbours_dense_and_sparse(seed):
    torch.manual_seed(seed)
    adj = random_graph(15, 0.25, seed)
    x = torch.randn(15, 6, dtype=torch.float64)
    layer = GCNLayer(6, 4).double()
    torch.nn.init.normal_(layer.bias)
    h = x @ layer.lin.weight.T
    deg = adj.sum(1).double() + 1
    expected = torch.stack(
        [sum(h[j] / torch.sqrt(deg[i] * deg[j]) for j in neighbours(adj, i)) for i in range(15)]
    )
    expected = expected + layer.bias
    for a in (adj, adj.to_sparse()):
        out, _ = layer(x, a)
        torch.testing.assert_close(out, expected)


def test_gcn_weights_do_not_depend_on_the_features():
    adj = random_graph(10, 0.3, 0)
    layer = GCNLayer(3, 2)
    _, w1 = layer(torch.randn(10, 3), adj)
    _, w2 = layer(torch.randn(10, 3) * 5, adj)
    assert torch.equal(w1, w2)


def gat_reference(layer: GATLayer, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
    """A per-node, per-head loop written from Veličković et al. (2018), eqs. 1-4."""
    H, Fo = layer.num_heads, layer.out_features
    h = (x @ layer.lin.weight.T).view(-1, H, Fo)  # (N, H, F')
    heads = []
    for head in range(H):
        rows = []
        for i in range(x.shape[0]):
            nbrs = neighbours(adj, i)
            e = torch.stack(
                [
                    F.leaky_relu(
                        torch.cat((h[i, head], h[j, head]))
                        @ torch.cat((layer.att_dst[head], layer.att_src[head])),
                        0.2,
                    )
                    for j in nbrs
                ]
            )
            alpha = torch.softmax(e, dim=0)
            rows.append(sum(a * h[j, head] for a, j in zip(alpha, nbrs, strict=True)))
        heads.append(torch.stack(rows))  # (N, F')
    out = torch.cat(heads, dim=-1) if layer.concat else torch.stack(heads).mean(0)
    return out + layer.bias


@pytest.mark.parametrize("concat", [True, False])
def test_gat_matches_a_dense_reference_dense_and_sparse(concat):
    torch.manual_seed(0)
    adj = random_graph(9, 0.3, 3)
    x = torch.randn(9, 5, dtype=torch.float64)
    layer = GATLayer(5, 3, num_heads=2, concat=concat).double()
    torch.nn.init.normal_(layer.bias)
    expected = gat_reference(layer, x, adj)
    out_dense, w_dense = layer(x, adj)
    out_sparse, w_sparse = layer(x, adj.to_sparse())
    torch.testing.assert_close(out_dense, expected)
    torch.testing.assert_close(out_sparse, expected)
    torch.testing.assert_close(w_sparse.to_dense(), w_dense)


def test_gat_gives_non_neighbours_exactly_zero_weight():
    adj = random_graph(12, 0.2, 1)
    _, w = GATLayer(4, 4, num_heads=3)(torch.randn(12, 4), adj)
    allowed = adj | torch.eye(12, dtype=torch.bool)
    assert (w[:, ~allowed] == 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 12))


def test_gat_weights_change_with_the_features():
    adj = random_graph(10, 0.4, 2)
    layer = GATLayer(3, 4, num_heads=2)
    _, w1 = layer(torch.randn(10, 3), adj)
    _, w2 = layer(torch.randn(10, 3), adj)
    assert (w1 - w2).abs().max() > 1e-3


@pytest.mark.parametrize("complete", [True, False])
def test_dot_graph_attention_is_sdpa_masked_by_the_graph(complete):
    torch.manual_seed(0)
    N = 11
    adj = complete_graph(N) if complete else random_graph(N, 0.3, 4)
    x = torch.randn(N, 6, dtype=torch.float64)
    layer = GATLayer(6, 4, num_heads=2, bias=False, score="dot").double()
    q, k, v = (layer._heads(m(x)) for m in (layer.q_proj, layer.k_proj, layer.lin))
    mask = None if complete else adj | torch.eye(N, dtype=torch.bool)
    ref, ref_w = scaled_dot_product_attention(q, k, v, mask)  # (H, N, F')
    out, w = layer(x, adj)
    torch.testing.assert_close(out, ref.transpose(0, 1).reshape(N, -1))
    torch.testing.assert_close(w, ref_w)


def test_isolated_node_without_self_loops_gets_zeros_not_nan():
    adj = random_graph(6, 0.5, 0)
    adj[0], adj[:, 0] = False, False
    x = torch.randn(6, 3)
    layers = (
        GATLayer(3, 2, bias=False, add_self_loops=False),
        GCNLayer(3, 2, bias=False, add_self_loops=False),
    )
    for layer in layers:
        for a in (adj, adj.to_sparse()):
            out, _ = layer(x, a)
            assert torch.isfinite(out).all() and (out[0] == 0).all()


def test_graph_layers_name_bad_inputs():
    layer = GCNLayer(3, 2)
    with pytest.raises(ValueError, match="bool tensor"):
        layer(torch.randn(4, 3), torch.ones(4, 4))
    with pytest.raises(ValueError, match="does not match N=4"):
        layer(torch.randn(4, 3), torch.ones(5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="expects 3"):
        layer(torch.randn(4, 2), torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="score"):
        GATLayer(3, 2, score="cosine")


def test_count_flops_counts_sparse_products_by_their_stored_entries():
    from attention import count_flops, make_random_graph

    adj = make_random_graph(200, avg_degree=6, seed=1)
    x = torch.randn(200, 16)
    edges = adj._nnz() + 200  # with the self-loops GCN adds
    with torch.no_grad():
        sparse = count_flops(GCNLayer(16, 8), x, adj)
        dense = count_flops(GCNLayer(16, 8), x, adj.to_dense())
    assert sparse == 2 * 200 * 16 * 8 + 2 * edges * 8
    assert dense == 2 * 200 * 16 * 8 + 2 * 200 * 200 * 8
