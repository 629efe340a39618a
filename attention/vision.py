"""Attention over image patches: patch embedding, 2-D positions, a tiny ViT (chapter 13).

Attention rollout, which chapter 13 applies to the ViT's maps, is in ``attention.rollout``.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_int
from .encoder import Encoder
from .positional import sinusoidal_positional_encoding

__all__ = [
    "PatchEmbedding",
    "VisionTransformer",
    "patchify",
    "sinusoidal_2d_positional_encoding",
]


def _check_images(images: object, patch_size: int, in_channels: int | None = None) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a 4-D tensor (B, C, H, W), channels first; got {got}")
    B, C, H, W = images.shape  # batch, channels, height, width
    if in_channels is not None and C != in_channels:
        hint = " (channels last? use images.permute(0, 3, 1, 2))" if W == in_channels else ""
        raise ValueError(f"images have C={C} channels, expected {in_channels}{hint}")
    if H % patch_size or W % patch_size:
        raise ValueError(
            f"image size {H}x{W} is not divisible by patch_size={patch_size}: "
            "crop or pad the images first"
        )


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into non-overlapping square patches and flatten each one.

    Patches are listed row by row (left to right, then top to bottom), and each patch is
    flattened channel first, then row, then column: the layout of ``nn.Conv2d``'s weight
    ``(D, C, P, P)``, so ``conv.weight.reshape(D, -1)`` applies to the flattened patches.

    Args:
        images: a batch of images, channels first.
        patch_size: the side ``P`` of each square patch; must divide ``H`` and ``W``.

    Returns:
        The flattened patches, ``N = (H / P) * (W / P)`` per image.

    Shapes:
        images ``(B, C, H, W)`` -> ``(B, N, C * P * P)``.

    Introduced in chapter 13 (vision transformers).
    """
    check_int("patch_size", patch_size)
    _check_images(images, patch_size)
    B, C, H, W = images.shape  # batch, channels, height, width
    P = patch_size
    x = images.reshape(B, C, H // P, P, W // P, P)  # (B, C, H, W) -> (B, C, Gh, P, Gw, P)
    x = x.permute(0, 2, 4, 1, 3, 5)  # -> (B, Gh, Gw, C, P, P): grid first, then one patch
    return x.reshape(B, (H // P) * (W // P), C * P * P)  # -> (B, N, C*P*P)


class PatchEmbedding(nn.Module):
    """Embed each ``P x P`` patch with one shared linear map (Dosovitskiy et al. 2021, eq. 1).

    The same thing as ``nn.Conv2d(C, D, kernel_size=P, stride=P)`` followed by flattening the
    grid: each output position of that convolution sees exactly one patch, and its kernel is
    the linear map. ``from_conv`` copies such a convolution's weights.

    Args:
        in_channels: image channels ``C``.
        patch_size: patch side ``P``.
        d_model: embedding width ``D``.
        bias: whether the linear map has a bias.

    Shapes:
        images ``(B, C, H, W)`` -> ``(B, N, D)`` with ``N = H W / P²``.

    Introduced in chapter 13 (vision transformers).
    """

    def __init__(self, in_channels: int, patch_size: int, d_model: int, bias: bool = True) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("patch_size", patch_size)):
            check_int(name, value)
        check_int("d_model", d_model)
        self.in_channels, self.patch_size = in_channels, patch_size
        self.proj = nn.Linear(in_channels * patch_size * patch_size, d_model, bias=bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embed the patches of ``images`` (``(B, C, H, W) -> (B, N, D)``). Chapter 13."""
        _check_images(images, self.patch_size, self.in_channels)
        return self.proj(patchify(images, self.patch_size))  # (B, N, C*P*P) -> (B, N, D)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> PatchEmbedding:
        """Build a PatchEmbedding with the weights of a ``Conv2d(kernel_size=P, stride=P)``.

        Args:
            conv: a convolution with a square kernel, stride equal to it, no padding,
                no dilation and one group.

        Returns:
            A new module on ``conv``'s device and dtype that computes the same numbers.

        Shapes:
            (weights only)

        Introduced in chapter 13 (vision transformers).
        """
        if not isinstance(conv, nn.Conv2d):
            raise ValueError(f"expected an nn.Conv2d, got {type(conv).__name__}")
        P = conv.kernel_size[0]
        if (
            conv.kernel_size != (P, P)
            or conv.stride != (P, P)
            or conv.padding not in ((0, 0), "valid")
            or conv.dilation != (1, 1)
            or conv.groups != 1
        ):
            raise ValueError(
                "only a Conv2d with kernel_size == stride (square), no padding, no dilation and "
                f"groups=1 is a patch embedding; got kernel_size={conv.kernel_size}, "
                f"stride={conv.stride}, padding={conv.padding}, dilation={conv.dilation}, "
                f"groups={conv.groups}"
            )
        D, C = conv.out_channels, conv.in_channels
        new = cls(C, P, D, bias=conv.bias is not None)
        new = new.to(device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            new.proj.weight.copy_(conv.weight.reshape(D, C * P * P))  # (D, C, P, P) -> (D, CPP)
            if conv.bias is not None:
                new.proj.bias.copy_(conv.bias)
        return new


def sinusoidal_2d_positional_encoding(
    grid_height: int,
    grid_width: int,
    d_model: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Build a fixed 2-D sinusoidal encoding: half the features for the row, half for the column.

    Each half is the 1-D encoding of Vaswani et al. (2017, §3.5) of width ``D/2``, so two
    patches in the same row share the first half and two in the same column the second. This is
    the fixed 2-D variant used by MAE and MoCo v3; the original ViT learns its positions.

    Args:
        grid_height: patches per column ``H / P``.
        grid_width: patches per row ``W / P``.
        d_model: width ``D``; must be divisible by 4 (a sin/cos pair per frequency, per axis).
        dtype, device: of the result.

    Returns:
        One row per patch, in ``patchify``'s order (row by row).

    Shapes:
        -> ``(grid_height * grid_width, D)``.

    Introduced in chapter 13 (vision transformers).
    """
    check_int("grid_height", grid_height)
    check_int("grid_width", grid_width)
    check_int("d_model", d_model)
    if d_model % 4:
        raise ValueError(
            f"d_model={d_model} must be divisible by 4 (D/2 per axis, in sin/cos pairs)"
        )
    half = d_model // 2
    rows = sinusoidal_positional_encoding(grid_height, half, dtype=torch.float64)  # (Gh, D/2)
    cols = sinusoidal_positional_encoding(grid_width, half, dtype=torch.float64)  # (Gw, D/2)
    pe = torch.cat(
        (
            rows[:, None, :].expand(grid_height, grid_width, half),  # (Gh, Gw, D/2): the row
            cols[None, :, :].expand(grid_height, grid_width, half),  # (Gh, Gw, D/2): the column
        ),
        dim=-1,
    )  # (Gh, Gw, D)
    return pe.reshape(grid_height * grid_width, d_model).to(device=device, dtype=dtype)


class VisionTransformer(nn.Module):
    """A small ViT classifier: patch embedding, positions, a pre-LN encoder, a linear head.

    Follows Dosovitskiy et al. (2021): patches are embedded linearly, a learned class token is
    prepended (``pool="cls"``; or the patch outputs are averaged, ``pool="mean"``), position
    vectors are added (learned, or the fixed 2-D sinusoids), a pre-LN Transformer encoder
    with GELU runs over the tokens, and a linear head reads the pooled vector.

    Args:
        image_size: the side of the square input images.
        patch_size: patch side ``P``; must divide ``image_size``.
        in_channels: image channels ``C``.
        num_classes: number of output classes.
        d_model: width ``D``.
        num_heads: attention heads ``H``.
        num_layers: encoder layers.
        d_ff: hidden width of each feed-forward block.
        dropout: dropout inside the encoder.
        pool: ``"cls"`` (class token) or ``"mean"`` (average of the patch outputs) (keyword only).
        positions: ``"learned"`` or ``"sinusoidal"`` (fixed 2-D) (keyword only).

    Shapes:
        images ``(B, C, H, W)`` -> logits ``(B, num_classes)``.

    Introduced in chapter 13 (vision transformers).
    """

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        in_channels: int,
        num_classes: int,
        d_model: int,
        num_heads: int,
        num_layers: int,
        d_ff: int,
        dropout: float = 0.0,
        *,
        pool: str = "cls",
        positions: str = "learned",
    ) -> None:
        super().__init__()
        for name, value in (("image_size", image_size), ("num_classes", num_classes)):
            check_int(name, value)
        check_int("patch_size", patch_size)
        if image_size % patch_size:
            raise ValueError(f"image_size={image_size} is not divisible by patch_size={patch_size}")
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', got {pool!r}")
        if positions not in ("learned", "sinusoidal"):
            raise ValueError(f"positions must be 'learned' or 'sinusoidal', got {positions!r}")
        self.pool, self.image_size = pool, image_size
        grid = image_size // patch_size
        self.num_patches = grid * grid
        self.patch_embed = PatchEmbedding(in_channels, patch_size, d_model)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model)) if pool == "cls" else None
        if positions == "learned":
            # Small random init, as ViT implementations do (std 0.02).
            self.pos_embed = nn.Parameter(torch.randn(1, self.num_patches, d_model) * 0.02)
        else:
            pe = sinusoidal_2d_positional_encoding(grid, grid, d_model)[None]  # (1, N, D)
            self.register_buffer("pos_embed", pe, persistent=False)
        self.encoder = Encoder(
            num_layers, d_model, num_heads, d_ff, dropout, norm_first=True, activation="gelu"
        )
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Classify ``images`` (``(B, C, H, W) -> (B, num_classes)``). Chapter 13."""
        return self.forward_with_weights(images, need_weights=False)[0]

    def forward_with_weights(
        self, images: torch.Tensor, need_weights: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Classify ``images`` and return every layer's attention weights as well.

        Args:
            images: a batch of images, channels first.
            need_weights: False skips the weights (fused attention) and returns None for them.

        Returns:
            ``(logits, weights)``. With ``pool="cls"`` token 0 is the class token and tokens
            ``1..N`` are the patches, row by row; with ``pool="mean"`` tokens ``0..N-1``.

        Shapes:
            images ``(B, C, H, W)`` -> logits ``(B, num_classes)``, weights ``(L, B, H, S, S)``
            with ``S = N + 1`` (class token) or ``N``.

        Introduced in chapter 13 (vision transformers).
        """
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            raise ValueError(
                f"images are {tuple(images.shape[-2:])}, this model takes "
                f"{self.image_size}x{self.image_size}"
            )
        x = self.patch_embed(images) + self.pos_embed  # (B, N, D)
        if self.cls_token is not None:
            cls = self.cls_token.expand(x.shape[0], -1, -1)  # (1, 1, D) -> (B, 1, D)
            x = torch.cat((cls, x), dim=1)  # (B, N, D) -> (B, 1 + N, D)
        x, weights = self.encoder.forward_with_weights(x, need_weights=need_weights)  # (B, S, D)
        pooled = x[:, 0] if self.cls_token is not None else x.mean(dim=1)  # (B, S, D) -> (B, D)
        return self.head(pooled), weights  # (B, num_classes), (L, B, H, S, S) or None
