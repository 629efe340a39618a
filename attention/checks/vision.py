"""Checker of ``attention.vision`` (chapter 13): a patch embedding written by hand."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._common import _call, _close, _fail, _first_match, _generator, _randint, _randn, _tensor


def _embedding(images, weight, bias, P, *, order="rows", flatten="CPP", with_bias=True):
    """The patch embedding written with one deliberate mistake (float64)."""
    B, C, H, W = images.shape  # batch, channels, height, width
    D = weight.shape[0]
    x = images.reshape(B, C, H // P, P, W // P, P)  # (B, C, Gh, P, Gw, P)
    grid = (0, 2, 4) if order == "rows" else (0, 4, 2)  # grid rows first, or columns first
    inner = {"CPP": (1, 3, 5), "PPC": (3, 5, 1), "CPP-swapped": (1, 5, 3)}[flatten]
    x = x if order == "memory" else x.permute(*grid, *inner)  # "memory": no permute at all
    x = x.reshape(B, (H // P) * (W // P), C * P * P)  # (B, N, C*P*P)
    out = x @ weight.reshape(D, C * P * P).T  # (B, N, D)
    return out + bias if with_bias else out


_MISTAKES = [
    ("the tokens were cut with reshape alone: without a permute, reshape takes consecutive "
     "memory (runs of pixel rows, channel by channel), not P x P blocks; reshape to "
     "(B, C, H/P, P, W/P, P), permute to (B, H/P, W/P, C, P, P), then flatten",
     {"order": "memory"}),
    ("the patches are listed column by column; Conv2d's output, flattened, lists them row by "
     "row (grid row first, then grid column)", {"order": "columns"}),
    ("each patch is flattened channels last (P, P, C); Conv2d's weight (D, C, P, P) needs the "
     "patch flattened channel first (C, P, P): permute the channel axis before the pixel axes",
     {"flatten": "PPC"}),
    ("each patch is flattened column first: inside a patch, keep the order (C, row, column) of "
     "Conv2d's weight", {"flatten": "CPP-swapped"}),
    ("the bias is missing: add bias (D,) to every patch token", {"with_bias": False}),
    ("the patches are listed column by column and flattened channels last",
     {"order": "columns", "flatten": "PPC"}),
]  # fmt: skip


def check_patch_embedding(fn: Callable) -> None:
    """Check a learner's patch embedding against ``F.conv2d`` with stride equal to the kernel.

    Args:
        fn: called as ``fn(images, weight, bias, patch_size)`` with float64 ``images (B, C, H,
            W)``, ``weight (D, C, P, P)`` (``Conv2d``'s layout), ``bias (D,)`` and an int;
            returns the patch tokens, row by row.

    Shapes:
        -> ``(B, N, D)`` with ``N = H W / P²``.

    Introduced in chapter 13 (exercise ex-13-patch-embedding).
    """
    name = "check_patch_embedding"
    gen = _generator()
    sizes = [  # (B, C, Gh, Gw, P, D)
        (2, 3, 2, 3, 4, 5),  # oblong grid, RGB: every mistake shows here
        (1, 1, 3, 3, 2, 4),  # one channel, square
        (_randint(gen, 1, 4), _randint(gen, 2, 5), _randint(gen, 2, 5), _randint(gen, 2, 5),
         _randint(gen, 2, 6), _randint(gen, 2, 9)),
    ]  # fmt: skip
    for B, C, Gh, Gw, P, D in sizes:
        H, W = Gh * P, Gw * P
        case = f"images ({B}, {C}, {H}, {W}), patch_size={P}, D={D}"
        images, weight, bias = _randn(gen, B, C, H, W), _randn(gen, D, C, P, P), _randn(gen, D)
        ref = F.conv2d(images, weight, bias, stride=P).flatten(2).transpose(1, 2)  # (B, N, D)
        out = _call(name, case, fn, images.clone(), weight.clone(), bias.clone(), P)
        hint = ""
        if isinstance(out, torch.Tensor) and tuple(out.shape) == (B, D, Gh * Gw):
            hint = " (that is Conv2d's layout (B, D, N): transpose to (B, N, D))"
        out = _tensor(name, case, out, (B, Gh * Gw, D), hint).to("cpu", torch.float64)
        if _close(out, ref):
            continue
        variant = functools.partial(_embedding, images, weight, bias, P)
        diagnosis = _first_match(out, _MISTAKES, variant, right=ref)
        raise _fail(name, case, diagnosis or (
            f"the tokens differ from Conv2d(kernel_size=P, stride=P) by up to "
            f"{(out - ref).abs().max():.3g}: cut P x P patches row by row, flatten each as "
            "(C, P, P), multiply by weight.reshape(D, -1).T and add the bias"))  # fmt: skip
    print(f"{name}: all {len(sizes)} random cases equal Conv2d(kernel_size=P, stride=P).")
