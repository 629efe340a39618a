"""Attention rollout (chapter 13): the product of identity-mixed, head-averaged maps."""

import pytest
import torch

from attention import VisionTransformer
from attention.rollout import attention_rollout


def test_rollout_is_the_product_of_identity_mixed_head_means():
    gen = torch.Generator().manual_seed(0)
    L, B, H, S = 3, 2, 4, 5
    w = torch.softmax(torch.randn(L, B, H, S, S, dtype=torch.float64, generator=gen), dim=-1)
    expected = torch.eye(S, dtype=torch.float64).expand(B, S, S)
    for layer in range(L):
        a = 0.5 * w[layer].mean(1) + 0.5 * torch.eye(S, dtype=torch.float64)
        expected = a @ expected  # rows of a already sum to 1
    rollout = attention_rollout(w)
    torch.testing.assert_close(rollout, expected)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(B, S, dtype=torch.float64))
    torch.testing.assert_close(attention_rollout(w[:1], residual=0.0), w[0].mean(1))


def test_rollout_refuses_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(L, B, H, S, S\)"):
        attention_rollout(torch.ones(2, 3, 3))
    with pytest.raises(ValueError, match="residual"):
        attention_rollout(torch.ones(1, 1, 1, 2, 2), residual=1.0)


def test_rollout_of_a_vit_is_a_distribution_over_its_tokens():
    torch.manual_seed(0)
    vit = VisionTransformer(8, 4, 3, 2, d_model=8, num_heads=2, num_layers=3, d_ff=16).eval()
    with torch.no_grad():
        _, weights = vit.forward_with_weights(torch.randn(2, 3, 8, 8))  # (L, B, H, S, S)
    rollout = attention_rollout(weights)
    assert weights.shape == (3, 2, 2, 5, 5) and rollout.shape == (2, 5, 5)
    assert (rollout >= 0).all()
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, 5))
