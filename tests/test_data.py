"""Tests of attention.data: the toy sequence-to-sequence tasks (chapter 06)."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attention import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    iterate_batches,
    make_number_words_data,
    make_reversal_data,
    make_sorting_data,
    remove_overlap,
    to_text,
)
from attention.data import number_to_words

MAKERS = [make_reversal_data, make_sorting_data, make_number_words_data]


@pytest.mark.parametrize("make", MAKERS)
def test_same_seed_same_data_other_seed_other_data(make) -> None:
    a, b, c = make(50, seed=3), make(50, seed=3), make(50, seed=4)
    for name in ("src", "tgt_in", "tgt_out"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.src, c.src)
    assert a.src.dtype == a.tgt_in.dtype == a.tgt_out.dtype == torch.long


def test_data_do_not_depend_on_the_global_seed() -> None:
    torch.manual_seed(0)
    a = make_reversal_data(20, seed=1)
    torch.manual_seed(123)
    assert torch.equal(a.src, make_reversal_data(20, seed=1).src)


def _rows(data):
    """(source tokens, target tokens) of each example, without specials."""
    for src, tgt_in, tgt_out in zip(data.src, data.tgt_in, data.tgt_out, strict=True):
        n = int((tgt_out != PAD_ID).sum()) - 1  # target tokens before EOS
        assert tgt_in[0] == BOS_ID and tgt_out[n] == EOS_ID
        assert torch.equal(tgt_in[1 : n + 1], tgt_out[:n])  # tgt_in is tgt_out shifted right
        assert (tgt_out[n + 1 :] == PAD_ID).all() and (tgt_in[n + 1 :] == PAD_ID).all()
        yield src[src != PAD_ID], tgt_out[:n]


@settings(max_examples=15, deadline=None)
@given(
    min_len=st.integers(1, 4),
    extra=st.integers(0, 5),
    num_symbols=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_reversal_and_sorting_targets_are_right(min_len, extra, num_symbols, seed) -> None:
    max_len = min_len + extra
    options = dict(min_len=min_len, max_len=max_len, num_symbols=num_symbols, seed=seed)
    rev, srt = make_reversal_data(30, **options), make_sorting_data(30, **options)
    assert rev.src.shape == (30, max_len) and rev.tgt_out.shape == (30, max_len + 1)
    for src, y in _rows(rev):
        assert min_len <= len(src) <= max_len
        assert ((src >= 3) & (src < 3 + num_symbols)).all()
        assert torch.equal(y, src.flip(0))
    for src, y in _rows(srt):
        assert torch.equal(y, src.sort().values)
    assert len(rev.src_vocab) == 3 + num_symbols and rev.src_vocab == rev.tgt_vocab


def test_lengths_vary() -> None:
    lengths = (make_reversal_data(200, min_len=2, max_len=9).src != PAD_ID).sum(1)
    assert set(lengths.tolist()) == set(range(2, 10))


def test_number_words_translation() -> None:
    data = make_number_words_data(300, max_digits=4, seed=5)
    n_digits = set()
    for i, (src, _) in enumerate(_rows(data)):
        digits = to_text(data.src[i], data.src_vocab).replace(" ", "")
        assert to_text(data.tgt_out[i], data.tgt_vocab) == " ".join(number_to_words(int(digits)))
        assert digits == str(int(digits))  # no leading zeros
        n_digits.add(len(src))
    assert n_digits == {1, 2, 3, 4}
    assert data.src_vocab[3:] == tuple("0123456789") and data.tgt_vocab[:3] == data.src_vocab[:3]


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "zero"),
        (15, "fifteen"),
        (20, "twenty"),
        (342, "three hundred forty two"),
        (1010, "one thousand ten"),
        (200000, "two hundred thousand"),
        (999999, "nine hundred ninety nine thousand nine hundred ninety nine"),
    ],
)
def test_number_to_words(n: int, words: str) -> None:
    assert " ".join(number_to_words(n)) == words


def test_iterate_batches_covers_each_example_once_per_epoch_and_trims_padding() -> None:
    data = make_reversal_data(10, min_len=1, max_len=6, seed=2)
    batches = list(itertools.islice(iterate_batches(data, 4, seed=1), 3))  # one epoch: 4+4+2
    assert [len(b) for b in batches] == [4, 4, 2]
    seen = sorted(tuple(r[r != PAD_ID].tolist()) for b in batches for r in b.src)
    assert seen == sorted(tuple(r[r != PAD_ID].tolist()) for r in data.src)
    for b in batches:
        assert (b.src[:, -1] != PAD_ID).any() and (b.tgt_out[:, -1] != PAD_ID).any()
    again = next(iterate_batches(data, 4, seed=1))
    assert torch.equal(again.src, batches[0].src)


def test_remove_overlap_leaves_only_unseen_sources() -> None:
    train, test = make_reversal_data(500, max_len=4, seed=1), make_reversal_data(200, seed=2)
    held_out = remove_overlap(test, train)
    seen = {tuple(r[r != PAD_ID].tolist()) for r in train.src}
    assert 0 < len(held_out) < len(test)
    assert all(tuple(r[r != PAD_ID].tolist()) not in seen for r in held_out.src)


def test_to_text_skips_specials_and_stops_at_eos() -> None:
    vocab = ("<pad>", "<bos>", "<eos>", "a", "b")
    assert to_text(torch.tensor([1, 3, 4, 2, 3, 0]), vocab) == "a b"
    assert to_text([3, 0, 4], vocab) == "a b"


def test_data_errors_name_the_values() -> None:
    with pytest.raises(ValueError, match="max_len must be an int >= min_len=5, got 3"):
        make_reversal_data(10, min_len=5, max_len=3)
    with pytest.raises(ValueError, match="num_examples must be a positive int, got 0"):
        make_sorting_data(0)
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        make_reversal_data(5, seed=-1)
    with pytest.raises(ValueError, match="max_digits must be at most 6 .*, got 7"):
        make_number_words_data(5, max_digits=7)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        next(iterate_batches(make_reversal_data(5), 0))


def test_indexing_keeps_the_batch_dim_and_trims_padding() -> None:
    data = make_reversal_data(6, min_len=2, max_len=7, seed=4)
    one = data[2]
    n = int((data.src[2] != PAD_ID).sum())
    assert one.src.shape == (1, n) and one.tgt_out.shape == (1, n + 1)
    assert torch.equal(data[-1].src[0], data.src[-1, : data[-1].src.shape[1]])
    assert len(data[1:4]) == 3
