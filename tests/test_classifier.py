"""attention.classifier: mean pooling and the encoder classifier ([CLS] or mean)."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from attention.classifier import POOLINGS, EncoderClassifier, mean_pool
from attention.training import train

F64 = torch.float64


def test_mean_pool_averages_real_tokens_only():
    x = torch.arange(24, dtype=F64).reshape(2, 4, 3)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    pooled = mean_pool(x, mask)
    assert_close(pooled[0], x[0, :2].mean(0))
    assert_close(pooled[1], x[1].mean(0))


def test_mean_pool_ignores_padding_contents_and_gives_zeros_for_empty_rows():
    x = torch.randn(2, 5, 4, dtype=F64)
    mask = torch.tensor([[True, True, True, False, False], [False] * 5])
    x2 = x.clone()
    x2[0, 3:] = 1e6
    assert torch.equal(mean_pool(x, mask)[0], mean_pool(x2, mask)[0])
    assert torch.equal(mean_pool(x, mask)[1], torch.zeros(4, dtype=F64))


def test_mean_pool_errors():
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        mean_pool(torch.randn(2, 3, 4), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"x must be \(B, S, D\) and mask \(B, S\)"):
        mean_pool(torch.randn(2, 3, 4), torch.ones(2, 4, dtype=torch.bool))


def ids_batch():
    # position 0 is [CLS] (id 1); 0 is padding
    return torch.tensor([[1, 5, 6, 7, 0, 0], [1, 8, 9, 5, 6, 7]])


@pytest.mark.parametrize("pooling", POOLINGS)
def test_classifier_shapes_and_weights(pooling):
    torch.manual_seed(0)
    model = EncoderClassifier(10, 3, d_model=8, num_heads=2, num_layers=2, pooling=pooling)
    logits, weights = model.forward_with_weights(ids_batch())
    assert logits.shape == (2, 3)
    assert weights.shape == (2, 2, 2, 6, 6)
    assert torch.equal(weights[:, 0, :, :, 4:], torch.zeros(2, 2, 6, 2))  # pads get no weight
    assert_close(model(ids_batch()), logits)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_classifier_ignores_padding(pooling):
    torch.manual_seed(0)
    model = EncoderClassifier(10, 2, d_model=8, num_heads=2, pooling=pooling, dtype=F64)
    ids = ids_batch()
    longer = torch.cat([ids, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    assert_close(model(longer), model(ids))


def test_cls_pooling_reads_position_zero_and_mean_reads_the_mean():
    torch.manual_seed(0)
    model = EncoderClassifier(10, 2, d_model=8, num_heads=2, pooling="cls", dtype=F64)
    ids = ids_batch()
    real = ids != 0
    x = model.encoder(model.embed(ids), real[:, None, None, :])
    assert_close(model(ids), model.head(x[:, 0]))
    model.pooling = "mean"
    assert_close(model(ids), model.head(mean_pool(x, real)))


def test_classifier_learns_a_token_presence_task():
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 10, (512, 6), generator=gen)
    ids[:, 0] = 1  # [CLS]
    labels = (ids == 9).any(dim=1).long()  # is token 9 in the sentence?
    batches = [(ids[i : i + 64], labels[i : i + 64]) for i in range(0, 512, 64)]
    torch.manual_seed(0)
    model = EncoderClassifier(10, 2, d_model=16, num_heads=2)
    history = train(model, batches, 80, 1e-2, progress=False,
                    loss_fn=lambda m, b: F.cross_entropy(m(b[0]), b[1]))  # fmt: skip
    accuracy = (model(ids).argmax(-1) == labels).float().mean().item()
    assert accuracy > 0.95, (accuracy, history[-1])


def test_classifier_errors():
    with pytest.raises(ValueError, match="pooling must be one of"):
        EncoderClassifier(10, 2, pooling="max")
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        EncoderClassifier(10, 0)
    model = EncoderClassifier(10, 2, d_model=8, num_heads=2)
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 10\)"):
        model(torch.tensor([[1, 12]]))
