"""Sentence classification with a Transformer encoder: read a [CLS] token, or average the tokens."""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_bool_mask, check_int
from .encoder import Encoder
from .layers import Weights
from .models import _Embedding

__all__ = ["POOLINGS", "EncoderClassifier", "mean_pool"]

POOLINGS = ("cls", "mean")


def mean_pool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average each sequence's vectors over its real tokens, leaving the padding out.

    Args:
        x: one vector per token.
        mask: bool, True = a real token (False = padding). A row with no real token gives a
            zero vector, not NaN.

    Returns:
        One vector per sequence.

    Shapes:
        x ``(B, S, D)``, mask ``(B, S)`` -> ``(B, D)``.

    Introduced in chapter 12 (attention in NLP tasks).
    """
    check_bool_mask("mask", mask, "True = real token")
    if x.dim() != 3 or mask.shape != x.shape[:2]:
        raise ValueError(
            f"x must be (B, S, D) and mask (B, S), got x {tuple(x.shape)} and mask "
            f"{tuple(mask.shape)}"
        )
    weights = mask.to(x.dtype)[..., None]  # (B, S) -> (B, S, 1): 1 for real tokens, 0 for pads
    total = (x * weights).sum(dim=1)  # (B, S, D) -> (B, D)
    return total / weights.sum(dim=1).clamp(min=1.0)  # (B, D) / (B, 1)


class EncoderClassifier(nn.Module):
    """A Transformer encoder with a linear classifier on one pooled vector per sentence.

    Tokens are embedded (times ``sqrt(D)``, plus sinusoidal positions, as in
    ``attention.Transformer``) and encoded by ``num_layers`` encoder layers with a padding
    mask; the classifier then reads either

    - ``pooling="cls"``: the output at position 0, which must hold a ``[CLS]`` token (BERT,
      Devlin et al. 2019): through attention, that one query decides what the classifier
      reads;
    - ``pooling="mean"``: the average of the outputs of all real tokens (``mean_pool``).

    Args:
        vocab_size: size of the vocabulary.
        num_classes: number of classes ``C``.
        d_model: model width ``D``.
        num_heads: attention heads ``H``.
        num_layers: encoder layers.
        d_ff: feed-forward width; defaults to ``4 * d_model``.
        dropout: dropout everywhere (embeddings, attention, sublayers).
        pooling: ``"cls"`` or ``"mean"`` (keyword only).
        max_len: longest sentence (keyword only).
        pad_id: the padding id, masked as a key and left out of the mean (keyword only).
        device: where to create the parameters (keyword only).
        dtype: dtype of the parameters (keyword only).

    Shapes:
        ids ``(B, S)`` -> logits ``(B, C)``.

    Introduced in chapter 12 (attention in NLP tasks).
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        d_model: int = 32,
        num_heads: int = 2,
        num_layers: int = 1,
        d_ff: int | None = None,
        dropout: float = 0.0,
        *,
        pooling: str = "cls",
        max_len: int = 128,
        pad_id: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_int("num_classes", num_classes)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        factory = {"device": device, "dtype": dtype}
        d_ff = 4 * d_model if d_ff is None else d_ff
        self.pooling, self.pad_id = pooling, pad_id
        self.embed = _Embedding(vocab_size, d_model, max_len, dropout, **factory)
        self.encoder = Encoder(num_layers, d_model, num_heads, d_ff, dropout, **factory)
        self.head = nn.Linear(d_model, num_classes, **factory)

    def forward_with_weights(
        self, ids: torch.Tensor, need_weights: bool = True
    ) -> tuple[torch.Tensor, Weights]:
        """Classify each sentence and return every layer's self-attention weights.

        Args:
            ids: token ids, right-padded with ``pad_id``; with ``pooling="cls"``, position 0
                of every row is the ``[CLS]`` token.
            need_weights: False returns None for the weights.

        Returns:
            ``(logits, weights)``; row 0 of the last layer's weights is what ``[CLS]`` reads.

        Shapes:
            ids ``(B, S)`` -> logits ``(B, C)``, weights ``(N, B, H, S, S)``.

        Introduced in chapter 12 (attention in NLP tasks).
        """
        self.embed.check(ids)
        real = ids != self.pad_id  # (B, S)
        x, weights = self.encoder.forward_with_weights(
            self.embed(ids), real[:, None, None, :], need_weights
        )  # (B, S, D), (N, B, H, S, S)
        pooled = x[:, 0] if self.pooling == "cls" else mean_pool(x, real)  # (B, D)
        return self.head(pooled), weights  # (B, C)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Class logits: ids ``(B, S)`` -> ``(B, C)``. Chapter 12."""
        return self.forward_with_weights(ids, need_weights=False)[0]

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}"
