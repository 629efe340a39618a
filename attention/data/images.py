"""Toy images generated in code: coloured shapes on noise, with their masks (chapter 13)."""

from __future__ import annotations

import torch

from .._validate import check_int

__all__ = ["SHAPE_CLASSES", "make_shapes_data"]


SHAPE_CLASSES = ("square", "disc", "plus", "cross")


def make_shapes_data(
    num_images: int,
    *,
    image_size: int = 24,
    min_size: int = 8,
    max_size: int = 12,
    noise: float = 0.3,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw RGB images of one shape on noise; the class is the shape (``SHAPE_CLASSES``).

    Each image is Gaussian noise of standard deviation ``noise`` with one shape painted on it:
    a hollow square, a disc, a plus or a diagonal cross, ``min_size`` to ``max_size`` pixels
    wide, at a random place, in a random colour (each channel ±0.6 to ±1). Strokes are about
    two pixels wide. Data are deterministic given ``seed``.

    Args:
        num_images: ``N``.
        image_size: the side ``S`` of the square images (keyword only).
        min_size, max_size: the range of the shapes' sides, in pixels (keyword only).
        noise: the background noise's standard deviation (keyword only).
        seed: seed of the ``torch.Generator`` (keyword only).

    Returns:
        ``(images, labels, masks)``: float32 images, channels first; class ids; and the pixels
        the shape covers.

    Shapes:
        -> images ``(N, 3, S, S)``, labels ``(N,)``, masks ``(N, S, S)`` (bool).

    Introduced in chapter 13 (vision transformers).
    """
    check_int("num_images", num_images)
    check_int("image_size", image_size)
    check_int("min_size", min_size, 3)
    check_int("max_size", max_size, min_size)
    check_int("seed", seed, 0)
    if max_size > image_size:
        raise ValueError(f"max_size={max_size} does not fit in image_size={image_size}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    gen = torch.Generator().manual_seed(seed)
    S, n = image_size, num_images
    labels = torch.randint(0, len(SHAPE_CLASSES), (n,), generator=gen)
    side = torch.randint(min_size, max_size + 1, (n,), generator=gen).float()[:, None, None]
    top = (torch.rand(n, 1, 1, generator=gen) * (S - side + 1)).floor()  # (n, 1, 1)
    left = (torch.rand(n, 1, 1, generator=gen) * (S - side + 1)).floor()
    colours = 0.6 + 0.4 * torch.rand(n, 3, generator=gen)
    colours = colours * torch.where(torch.rand(n, 3, generator=gen) < 0.5, -1.0, 1.0)  # (n, 3)
    images = torch.randn(n, 3, S, S, generator=gen) * noise
    grid = torch.arange(S, dtype=torch.float32)
    y, x = grid[None, :, None] - top, grid[None, None, :] - left  # (n, S, 1), (n, 1, S)
    inside = (y >= 0) & (y < side) & (x >= 0) & (x < side)  # (n, S, S): the shape's box
    c = (side - 1) / 2  # the box's centre
    shapes = torch.stack(
        (
            (y < 2) | (y >= side - 2) | (x < 2) | (x >= side - 2),  # hollow square
            (y - c) ** 2 + (x - c) ** 2 <= (side / 2) ** 2,  # disc
            ((y - c).abs() < 1) | ((x - c).abs() < 1),  # plus
            ((y - x).abs() < 1) | ((y + x - (side - 1)).abs() < 1),  # diagonal cross
        )
    )  # (4, n, S, S)
    masks = inside & shapes[labels, torch.arange(n)]  # (n, S, S)
    images = torch.where(masks[:, None], colours[:, :, None, None], images)  # (n, 3, S, S)
    return images, labels, masks
