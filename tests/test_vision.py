"""Patch embedding, 2-D positions and the tiny ViT (chapter 13)."""

import pytest
import torch
from torch import nn

from attention.positional import sinusoidal_positional_encoding
from attention.vision import (
    PatchEmbedding,
    VisionTransformer,
    patchify,
    sinusoidal_2d_positional_encoding,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_patch_embedding_equals_strided_conv2d_with_copied_weights(seed):
    gen = torch.Generator().manual_seed(seed)
    C, P, D = (int(v) for v in torch.randint(1, 5, (3,), generator=gen))
    Gh, Gw = (int(v) for v in torch.randint(1, 5, (2,), generator=gen))
    images = torch.randn(2, C, Gh * P, Gw * P, dtype=torch.float64, generator=gen)
    conv = nn.Conv2d(C, D, kernel_size=P, stride=P, dtype=torch.float64)
    expected = conv(images).flatten(2).transpose(1, 2)  # (B, D, Gh, Gw) -> (B, N, D)
    torch.testing.assert_close(PatchEmbedding.from_conv(conv)(images), expected)


def test_patchify_lists_patches_row_by_row_channel_first():
    images = torch.randn(2, 3, 8, 12, dtype=torch.float64)
    patches = patchify(images, 4)  # grid 2 x 3
    assert patches.shape == (2, 6, 3 * 16)
    for r in range(2):
        for c in range(3):
            block = images[:, :, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4]  # (B, C, P, P)
            torch.testing.assert_close(patches[:, 3 * r + c], block.reshape(2, -1))


def test_vit_image_224_patch_16_has_196_tokens():
    assert patchify(torch.zeros(1, 3, 224, 224), 16).shape == (1, 196, 768)


def test_patch_embedding_names_channels_last_and_bad_sizes():
    embed = PatchEmbedding(3, 4, 8)
    with pytest.raises(ValueError, match="channels last"):
        embed(torch.zeros(1, 8, 8, 3))
    with pytest.raises(ValueError, match="not divisible by patch_size=4"):
        embed(torch.zeros(1, 3, 10, 8))


def test_from_conv_refuses_overlapping_or_padded_convolutions():
    with pytest.raises(ValueError, match="kernel_size == stride"):
        PatchEmbedding.from_conv(nn.Conv2d(3, 8, kernel_size=4, stride=2))
    with pytest.raises(ValueError, match="no padding"):
        PatchEmbedding.from_conv(nn.Conv2d(3, 8, kernel_size=4, stride=4, padding=1))


def test_2d_sinusoids_give_row_then_column_encodings():
    pe = sinusoidal_2d_positional_encoding(3, 5, 16, dtype=torch.float64)
    assert pe.shape == (15, 16)
    one_d = sinusoidal_positional_encoding(5, 8, dtype=torch.float64)
    grid = pe.view(3, 5, 16)
    for r in range(3):
        for c in range(5):
            torch.testing.assert_close(grid[r, c, :8], one_d[r])
            torch.testing.assert_close(grid[r, c, 8:], one_d[c])
    with pytest.raises(ValueError, match="divisible by 4"):
        sinusoidal_2d_positional_encoding(2, 2, 6)


@pytest.mark.parametrize("pool", ["cls", "mean"])
@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_vit_shapes_and_weights(pool, positions):
    model = VisionTransformer(16, 4, 3, 5, 16, 2, 3, 32, pool=pool, positions=positions).eval()
    logits, weights = model.forward_with_weights(torch.randn(2, 3, 16, 16))
    S = 16 + (pool == "cls")
    assert logits.shape == (2, 5)
    assert weights.shape == (3, 2, 2, S, S)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 2, 2, S))
    torch.testing.assert_close(model(torch.randn(2, 3, 16, 16)).shape, logits.shape)


def test_vit_learns_to_separate_two_simple_classes():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 8, 8) * 0.1
    y = torch.arange(64) % 2
    x[y == 1, :, :4] += 1.0  # class 1: bright top half
    model = VisionTransformer(8, 4, 1, 2, 16, 2, 1, 32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (model(x).argmax(-1) == y).float().mean() == 1.0
