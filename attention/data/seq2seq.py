"""Toy sequence-to-sequence tasks, generated in code: reversal, sorting, numbers to words.

Every task shares three special ids: ``PAD_ID = 0`` (right padding, left out of the loss and
masked as a key), ``BOS_ID = 1`` (starts every decoder input) and ``EOS_ID = 2`` (ends every
target). Content tokens start at id 3. Data are deterministic given ``seed``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from .._validate import check_int

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "PAD_ID",
    "Seq2SeqData",
    "iterate_batches",
    "make_number_words_data",
    "make_reversal_data",
    "make_sorting_data",
    "remove_overlap",
    "to_text",
]

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIALS = ("<pad>", "<bos>", "<eos>")
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen \
fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS = (*_ONES, *_TENS, "hundred", "thousand")


@dataclass
class Seq2SeqData:
    """Examples of a toy task, right-padded with ``PAD_ID``; index or slice it for batches.

    Attributes:
        src: source ids, ``(N, S)``; no BOS or EOS.
        tgt_in: decoder input ``BOS y_1 .. y_n``, ``(N, T)`` (teacher forcing).
        tgt_out: what each decoder position must predict, ``y_1 .. y_n EOS``, ``(N, T)``.
        src_vocab: token string of each source id.
        tgt_vocab: token string of each target id.

    Introduced in chapter 06 (training a tiny Transformer).
    """

    src: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    src_vocab: tuple[str, ...]
    tgt_vocab: tuple[str, ...]

    def __len__(self) -> int:
        return self.src.shape[0]

    def __getitem__(self, index: int | slice | torch.Tensor) -> Seq2SeqData:
        """Select examples (always keeping the batch dim) and drop all-padding columns."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        src, tgt_in, tgt_out = self.src[index], self.tgt_in[index], self.tgt_out[index]
        S = int((src != PAD_ID).sum(1).max()) if len(src) else 0  # longest source
        T = int((tgt_out != PAD_ID).sum(1).max()) if len(src) else 0  # longest target
        return Seq2SeqData(
            src[:, :S], tgt_in[:, :T], tgt_out[:, :T], self.src_vocab, self.tgt_vocab
        )

    def to(self, device: torch.device | str) -> Seq2SeqData:
        """Return a copy whose tensors are on ``device``."""
        tensors = (t.to(device) for t in (self.src, self.tgt_in, self.tgt_out))
        return Seq2SeqData(*tensors, self.src_vocab, self.tgt_vocab)


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        check_int(name, value)


def _generator(seed: int) -> torch.Generator:
    check_int("seed", seed, minimum=0)
    return torch.Generator().manual_seed(seed)


def _targets(y: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Build ``BOS y`` and ``y EOS`` from right-padded ``y`` ``(N, L)`` -> two ``(N, L + 1)``."""
    N = y.shape[0]  # examples
    tgt_in = torch.cat([torch.full((N, 1), BOS_ID), y], dim=1)  # (N, L) -> (N, L + 1)
    tgt_out = torch.cat([y, torch.full((N, 1), PAD_ID)], dim=1)  # (N, L) -> (N, L + 1)
    tgt_out[torch.arange(N), lengths] = EOS_ID  # right after each target's last token
    return tgt_in, tgt_out


def _random_symbols(
    num_examples: int, min_len: int, max_len: int, num_symbols: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    _check_sizes(num_examples=num_examples, min_len=min_len, num_symbols=num_symbols)
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < min_len:
        raise ValueError(f"max_len must be an int >= min_len={min_len}, got {max_len!r}")
    gen = _generator(seed)
    lengths = torch.randint(min_len, max_len + 1, (num_examples,), generator=gen)  # (N,)
    ids = torch.randint(3, 3 + num_symbols, (num_examples, max_len), generator=gen)  # (N, L)
    real = torch.arange(max_len) < lengths[:, None]  # (L,) < (N, 1) -> (N, L)
    vocab = (*SPECIALS, *(str(i) for i in range(num_symbols)))
    return ids.masked_fill(~real, PAD_ID), lengths, vocab


def make_reversal_data(
    num_examples: int, *, min_len: int = 3, max_len: int = 8, num_symbols: int = 10, seed: int = 0
) -> Seq2SeqData:
    """Generate sequences of random symbols whose target is the same sequence reversed.

    Args:
        num_examples: number of examples ``N``.
        min_len: shortest sequence.
        max_len: longest sequence.
        num_symbols: distinct content tokens, shown as ``"0"``, ``"1"``, ... (ids 3, 4, ...).
        seed: seed of the ``torch.Generator`` that draws lengths and symbols.

    Returns:
        A ``Seq2SeqData``; source and target share one vocabulary.

    Shapes:
        -> src ``(N, max_len)``, tgt_in and tgt_out ``(N, max_len + 1)``.

    Introduced in chapter 06 (training a tiny Transformer).
    """
    src, lengths, vocab = _random_symbols(num_examples, min_len, max_len, num_symbols, seed)
    L = src.shape[1]  # padded length
    # position j of a row of length n takes source position n - 1 - j (pads stay pads)
    index = (lengths[:, None] - 1 - torch.arange(L)).clamp(min=0)  # (N, 1) - (L,) -> (N, L)
    y = src.gather(1, index).masked_fill(src == PAD_ID, PAD_ID)  # (N, L)
    return Seq2SeqData(src, *_targets(y, lengths), vocab, vocab)


def make_sorting_data(
    num_examples: int, *, min_len: int = 3, max_len: int = 8, num_symbols: int = 10, seed: int = 0
) -> Seq2SeqData:
    """Generate sequences of random symbols whose target is the sequence sorted ascending.

    Arguments, result and shapes are those of ``make_reversal_data``. Chapter 06.
    """
    src, lengths, vocab = _random_symbols(num_examples, min_len, max_len, num_symbols, seed)
    big = 3 + num_symbols  # larger than every symbol, so the pads sort to the end
    y = src.masked_fill(src == PAD_ID, big).sort(dim=1).values  # (N, L)
    y = y.masked_fill(y == big, PAD_ID)
    return Seq2SeqData(src, *_targets(y, lengths), vocab, vocab)


def number_to_words(n: int) -> list[str]:
    """Spell ``0 <= n < 10**6`` in English words: 342 -> three hundred forty two. Chapter 06."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10 - 2]] + ([_ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        return [_ONES[n // 100], "hundred"] + (number_to_words(n % 100) if n % 100 else [])
    rest = number_to_words(n % 1000) if n % 1000 else []
    return number_to_words(n // 1000) + ["thousand"] + rest


def _pad(rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(r) for r in rows])  # (N,)
    out = torch.full((len(rows), int(lengths.max())), PAD_ID)  # (N, L)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row)
    return out, lengths


def make_number_words_data(num_examples: int, *, max_digits: int = 3, seed: int = 0) -> Seq2SeqData:
    """Generate a digits-to-words "translation": ``3 4 2`` -> ``three hundred forty two``.

    Unlike reversal, source and target differ in vocabulary and length, and the alignment is
    not one-to-one (``1 5`` -> ``fifteen``; ``2 0 0`` -> ``two hundred``). The number of
    digits is uniform in ``1..max_digits``, then the number is uniform among those.

    Args:
        num_examples: number of examples ``N``.
        max_digits: most digits, at most 6.
        seed: seed of the ``torch.Generator`` that draws the numbers.

    Returns:
        A ``Seq2SeqData``; source vocabulary: specials + ``"0".."9"``; target vocabulary:
        specials + ``NUMBER_WORDS``.

    Shapes:
        -> src ``(N, S)``, tgt_in and tgt_out ``(N, T)`` (longest example + 1).

    Introduced in chapter 06 (training a tiny Transformer).
    """
    _check_sizes(num_examples=num_examples, max_digits=max_digits)
    if max_digits > 6:
        raise ValueError(
            f"max_digits must be at most 6 (numbers below a million), got {max_digits}"
        )
    gen = _generator(seed)
    digits = torch.randint(1, max_digits + 1, (num_examples,), generator=gen)  # (N,)
    low = torch.where(digits == 1, 0, 10 ** (digits - 1))  # smallest number with that many digits
    numbers = low + (torch.rand(num_examples, generator=gen, dtype=torch.float64) * (
        10**digits - low)).long()  # fmt: skip
    word_id = {w: 3 + i for i, w in enumerate(NUMBER_WORDS)}
    src, _ = _pad([[3 + int(c) for c in str(int(n))] for n in numbers])
    y, lengths = _pad([[word_id[w] for w in number_to_words(int(n))] for n in numbers])
    src_vocab = (*SPECIALS, *(str(i) for i in range(10)))
    return Seq2SeqData(src, *_targets(y, lengths), src_vocab, (*SPECIALS, *NUMBER_WORDS))


def remove_overlap(data: Seq2SeqData, seen: Seq2SeqData) -> Seq2SeqData:
    """Drop the examples of ``data`` whose source also occurs in ``seen``: a truly held-out set.

    Short sequences are few (1000 of length 3 over 10 symbols), so two independently drawn
    sets share some; accuracy on such shared examples would measure memory, not rules.

    Args:
        data: candidate held-out examples.
        seen: the training examples.

    Returns:
        The examples of ``data`` whose source is not in ``seen``, in their original order.

    Shapes:
        data ``(N, S)`` -> ``(N', S')`` with ``N' <= N``.

    Introduced in chapter 06 (training a tiny Transformer).
    """
    known = {tuple(r[r != PAD_ID].tolist()) for r in seen.src}
    keep = [i for i, r in enumerate(data.src) if tuple(r[r != PAD_ID].tolist()) not in known]
    return data[torch.tensor(keep, dtype=torch.long)]


def iterate_batches(
    data: Seq2SeqData, batch_size: int, *, seed: int = 0, shuffle: bool = True
) -> Iterator[Seq2SeqData]:
    """Yield batches forever, reshuffling each epoch; each batch is trimmed of all-pad columns.

    Args:
        data: the examples.
        batch_size: examples per batch (the last batch of an epoch may be smaller).
        seed: seed of the shuffling ``torch.Generator``.
        shuffle: whether to shuffle each epoch.

    Returns:
        An endless iterator of ``Seq2SeqData``.

    Shapes:
        -> src ``(b, S')``, tgt_in/tgt_out ``(b, T')``, ``b <= batch_size``.

    Introduced in chapter 06 (training a tiny Transformer).
    """
    _check_sizes(batch_size=batch_size)
    gen = _generator(seed)
    while True:
        order = torch.randperm(len(data), generator=gen) if shuffle else torch.arange(len(data))
        for start in range(0, len(data), batch_size):
            yield data[order[start : start + batch_size]]


def to_text(ids: torch.Tensor | Sequence[int], vocab: Sequence[str]) -> str:
    """Turn one sequence of ids into words, skipping PAD and BOS and stopping at EOS.

    Args:
        ids: the ids of one sequence.
        vocab: the token string of each id.

    Returns:
        The tokens joined by spaces.

    Shapes:
        ids ``(T,)`` -> str.

    Introduced in chapter 06 (training a tiny Transformer).
    """
    words = []
    for i in torch.as_tensor(ids).tolist():
        if i == EOS_ID:
            break
        if i not in (PAD_ID, BOS_ID):
            words.append(vocab[i])
    return " ".join(words)
