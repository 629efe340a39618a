"""attention.data.text: the toy sentiment sentences of chapter 12."""

import pytest
import torch

from attention.data import PAD_ID, SENTIMENT_WORDS, make_sentiment_data


def test_sentiment_sentences_start_with_cls_and_are_right_padded():
    data = make_sentiment_data(500, min_len=4, max_len=9, seed=3)
    assert data.ids.shape == (500, 10) and data.labels.shape == (500,)
    assert (data.ids[:, 0] == data.vocab.index("[CLS]")).all()
    lengths = (data.ids[:, 1:] != PAD_ID).sum(dim=1)
    assert lengths.min() >= 4 and lengths.max() <= 9
    real = torch.arange(9) < lengths[:, None]
    assert torch.equal(data.ids[:, 1:] != PAD_ID, real)  # padding only at the end


def test_sentiment_label_is_polarity_flipped_by_a_not_right_before_it():
    data = make_sentiment_data(800, seed=1)
    positive = {data.vocab.index(w) for w in SENTIMENT_WORDS["positive"]}
    negative = {data.vocab.index(w) for w in SENTIMENT_WORDS["negative"]}
    not_id = data.vocab.index("not")
    for ids, label in zip(data.ids.tolist(), data.labels.tolist(), strict=True):
        where = [i for i, t in enumerate(ids) if t in positive | negative]
        assert len(where) == 1  # one sentiment word
        j = where[0]
        assert j >= 2  # after [CLS] and at least one word
        nots = [i for i, t in enumerate(ids) if t == not_id]
        assert nots in ([], [j - 1])  # "not", if any, right before it
        assert label == int((ids[j] in positive) != bool(nots))


def test_sentiment_data_is_balanced_deterministic_and_batched():
    data = make_sentiment_data(2000, seed=0)
    assert 0.45 < data.labels.float().mean() < 0.55
    negated = (data.ids == data.vocab.index("not")).any(dim=1).float().mean()
    assert 0.45 < negated < 0.55
    again = make_sentiment_data(2000, seed=0)
    assert torch.equal(data.ids, again.ids) and torch.equal(data.labels, again.labels)
    assert not torch.equal(data.ids, make_sentiment_data(2000, seed=1).ids)
    batches = data.batches(64)
    assert len(batches) == 32 and batches[-1][0].shape == (2000 - 31 * 64, data.ids.shape[1])
    assert torch.equal(torch.cat([b[1] for b in batches]), data.labels)
    assert len(data) == 2000 and data.label_names == ("negative", "positive")


def test_sentiment_data_errors():
    with pytest.raises(ValueError, match="min_len must be an int >= 2"):
        make_sentiment_data(10, min_len=1)
    with pytest.raises(ValueError, match="max_len must be an int >= 6"):
        make_sentiment_data(10, max_len=5)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        make_sentiment_data(10).batches(0)
