"""How a projection is split into heads (chapter 04)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from .style import FONT_PT, LABEL_PT, MAX_WIDTH, TITLE_PT, WIDTH, wrap


def plot_head_split(
    num_tokens: int,
    d_model: int,
    num_heads: int,
    token_labels: Sequence[str] | None = None,
    *,
    show_wrong: bool = True,
    title: str | None = None,
) -> Figure:
    """Draw which tokens and features each head receives when a projection is split into heads.

    The split is computed, not drawn by hand: a ``(1, T, D)`` tensor of feature indices goes
    through ``view(B, T, H, Dh).transpose(1, 2)`` (right: every head gets all ``T`` tokens and
    its own ``Dh`` features) and, with ``show_wrong``, through ``view(B, H, T, Dh)`` without the
    transpose (wrong: each head gets a slice of about ``T / H`` tokens, a "sub-sequence").
    Each cell shows a feature index, coloured by the head that owns that feature.

    Args:
        num_tokens: ``T``, the number of tokens (rows).
        d_model: ``D``, the width (columns); at most 64 so that every index stays readable.
        num_heads: ``H``; must divide ``d_model``.
        token_labels: one label per token; defaults to ``"token 0"``, ``"token 1"``, ...
        show_wrong: add the row of maps that the sequence-splitting ``view`` gives.
        title: the title of the whole figure.

    Returns:
        The Figure: one ``(T, D)`` map, then ``H`` maps of ``(T, Dh)`` per split shown.

    Shapes:
        ``(T, D)`` -> ``(H, T, Dh)``.

    Introduced in chapter 04 (heads split the features, not the sequence).
    """
    for name, value in (("num_tokens", num_tokens), ("d_model", d_model), ("num_heads", num_heads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if d_model % num_heads != 0:
        raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
    if d_model > 64:
        raise ValueError(f"d_model={d_model} is too wide to label every feature; use d_model <= 64")
    T, D, H, Dh = num_tokens, d_model, num_heads, d_model // num_heads
    labels = [f"token {t}" for t in range(T)] if token_labels is None else list(token_labels)
    if len(labels) != T:
        raise ValueError(f"token_labels has {len(labels)} labels but num_tokens={T}")
    feature = torch.arange(D).repeat(1, T, 1)  # (B, T, D) with B = 1: each cell's feature index
    token = torch.arange(T)[:, None].repeat(1, 1, D)  # (B, T, D): each cell's token index
    splits = [
        (
            f"right: q.view(B, T, H, Dh).transpose(1, 2): every head gets every token, "
            f"(T, Dh) = ({T}, {Dh})",
            lambda t: t.view(1, T, H, Dh).transpose(1, 2),  # (B, T, D) -> (B, H, T, Dh)
        )
    ]
    if show_wrong:
        splits.append(
            (
                "wrong: q.view(B, H, T, Dh), no transpose: each head gets a slice of the tokens",
                lambda t: t.view(1, H, T, Dh),  # (B, T, D) -> (B, H, T, Dh): cuts the tokens
            )
        )
    palette = plt.get_cmap("Pastel1" if H <= 9 else "tab20")
    cmap = ListedColormap([palette(h % palette.N) for h in range(H)])
    width = min(max(WIDTH, 0.25 * D + 0.45 * H + 0.5), MAX_WIDTH)  # a cell holds 2 digits
    size = (width, (0.27 * T + 1.05) * (1 + len(splits)))
    fig = plt.figure(figsize=size, layout="constrained")
    rows = fig.subfigures(1 + len(splits), 1)

    def draw(ax: Axes, feats: torch.Tensor, toks: torch.Tensor) -> None:
        f = feats.numpy()  # (T, width): feature indices
        ax.imshow(f // Dh, cmap=cmap, vmin=-0.5, vmax=H - 0.5, aspect="auto")
        for i in range(f.shape[0]):
            for j in range(f.shape[1]):
                ax.text(j, i, str(f[i, j]), ha="center", va="center", fontsize=FONT_PT)
        ax.set_xticks([])
        ax.set_yticks(range(f.shape[0]), [labels[t] for t in toks[:, 0].tolist()])
        ax.tick_params(length=0, labelsize=FONT_PT, pad=2)

    top = rows[0].subplots()
    draw(top, feature[0], token[0])
    for h in range(1, H):
        top.axvline(h * Dh - 0.5, color="white", linewidth=3)
    top.set_xlabel("feature index (colour: the head that owns it)", fontsize=LABEL_PT)
    rows[0].suptitle(f"q = q_proj(x): (T, D) = ({T}, {D})", fontsize=LABEL_PT)
    for row, (heading, split) in zip(rows[1:], splits, strict=True):
        axes = row.subplots(1, H, squeeze=False)[0]
        feats, toks = split(feature), split(token)  # (B, H, T, Dh) each
        for h, ax in enumerate(axes):
            draw(ax, feats[0, h], toks[0, h])
            ax.set_title(f"head {h + 1}" if H > 2 else f"head {h + 1}: (T, Dh) = ({T}, {Dh})")
            ax.title.set_fontsize(FONT_PT)
        row.suptitle(wrap(heading, width, LABEL_PT), fontsize=LABEL_PT)
    if title:
        fig.suptitle(wrap(title, width, TITLE_PT), fontsize=TITLE_PT)
    return fig
