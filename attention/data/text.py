"""Toy sentences generated in code for classification (chapter 12): sentiment with negation.

Ids follow ``seq2seq``'s: ``PAD_ID = 0`` pads on the right (and ids 1 and 2, BOS and EOS, are
reserved but unused); every sentence starts with a ``[CLS]`` token. Data are deterministic
given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validate import check_int
from .seq2seq import PAD_ID, SPECIALS, _generator

__all__ = ["CLS_TOKEN", "SENTIMENT_WORDS", "ClassificationData", "make_sentiment_data"]

CLS_TOKEN = "[CLS]"
SENTIMENT_WORDS = {
    "positive": ("good", "great", "fun", "moving"),
    "negative": ("bad", "dull", "boring", "awful"),
}
_FILLERS = "the film plot story actors music ending was is and a it very quite really so".split()


@dataclass
class ClassificationData:
    """Sentences with one label each: ``[CLS]`` first, right-padded with ``PAD_ID``.

    Attributes:
        ids: token ids, ``(N, S)``; position 0 holds ``[CLS]`` in every row.
        labels: the class of each sentence, ``(N,)``.
        vocab: token string of each id.
        label_names: name of each class.

    Introduced in chapter 12 (attention in NLP tasks).
    """

    ids: torch.Tensor
    labels: torch.Tensor
    vocab: tuple[str, ...]
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return self.ids.shape[0]

    def batches(self, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Split into ``(ids, labels)`` pairs of ``batch_size`` rows, in order (for ``train``)."""
        check_int("batch_size", batch_size)
        return [
            (self.ids[i : i + batch_size], self.labels[i : i + batch_size])
            for i in range(0, len(self), batch_size)
        ]


def make_sentiment_data(
    num_examples: int, *, min_len: int = 6, max_len: int = 12, seed: int = 0
) -> ClassificationData:
    """Generate toy sentences whose sentiment hangs on one word and an optional "not" before it.

    Each sentence is ``[CLS]`` then ``min_len`` to ``max_len`` words: random filler words, one
    sentiment word (``SENTIMENT_WORDS``) at a random position after the first, and, in half of
    the sentences, ``not`` right before it. The label is the word's polarity, flipped by
    ``not``: ``... not dull ...`` is positive. So the class depends on two tokens and on their
    order, and a classifier must find both wherever they are.

    Args:
        num_examples: number of sentences ``N``.
        min_len: fewest words (``[CLS]`` not counted), at least 2.
        max_len: most words.
        seed: seed of the ``torch.Generator`` that draws everything.

    Returns:
        A ``ClassificationData`` with labels 0 = negative, 1 = positive.

    Shapes:
        -> ids ``(N, 1 + max_len)``, labels ``(N,)``.

    Introduced in chapter 12 (attention in NLP tasks).
    """
    check_int("num_examples", num_examples)
    check_int("min_len", min_len, minimum=2)
    check_int("max_len", max_len, minimum=min_len)
    gen = _generator(seed)
    positive, negative = SENTIMENT_WORDS["positive"], SENTIMENT_WORDS["negative"]
    vocab = (*SPECIALS, CLS_TOKEN, "not", *positive, *negative, *_FILLERS)
    first_sentiment, first_filler = len(SPECIALS) + 2, len(SPECIALS) + 2 + 2 * len(positive)
    N, L = num_examples, max_len  # sentences, most words
    lengths = torch.randint(min_len, max_len + 1, (N,), generator=gen)  # (N,)
    words = torch.randint(first_filler, len(vocab), (N, L), generator=gen)  # (N, L) fillers
    where = 1 + (torch.rand(N, generator=gen) * (lengths - 1)).long()  # (N,) in [1, length)
    is_positive = torch.rand(N, generator=gen) < 0.5  # (N,)
    pick = torch.randint(0, len(positive), (N,), generator=gen)  # (N,)
    rows = torch.arange(N)
    words[rows, where] = first_sentiment + pick + len(positive) * (~is_positive).long()
    negated = torch.rand(N, generator=gen) < 0.5  # (N,)
    words[rows[negated], where[negated] - 1] = vocab.index("not")
    words = words.masked_fill(torch.arange(L) >= lengths[:, None], PAD_ID)  # (N, L)
    cls = torch.full((N, 1), vocab.index(CLS_TOKEN))
    ids = torch.cat([cls, words], dim=1)  # (N, L) -> (N, 1 + L)
    labels = (is_positive != negated).long()  # "not" flips the polarity
    return ClassificationData(ids, labels, vocab, ("negative", "positive"))
