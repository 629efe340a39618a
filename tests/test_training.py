"""Tests of attention.training: the training loop and exact-match accuracy (chapter 06)."""

from __future__ import annotations

import pytest
import torch

from attention import (
    DecoderOnlyLM,
    Transformer,
    exact_match_accuracy,
    iterate_batches,
    make_reversal_data,
    train,
)


def test_training_lowers_the_loss_and_returns_one_value_per_step() -> None:
    torch.manual_seed(0)
    data = make_reversal_data(256, max_len=5, seed=1)
    model = Transformer(13, 13, d_model=32, num_heads=2, dropout=0.0).eval()
    history = train(model, iterate_batches(data, 32), 40, 3e-3, warmup_steps=5, progress=False)
    assert len(history) == 40 and all(isinstance(x, float) for x in history)
    assert sum(history[-5:]) / 5 < 0.75 * sum(history[:5]) / 5
    assert not model.training  # its mode is restored


def test_training_a_language_model_on_input_target_pairs_and_reusing_a_list() -> None:
    torch.manual_seed(1)
    tokens = torch.arange(12).repeat(8, 2)  # (8, 24): a repeating pattern
    batches = [(tokens[:4, :-1], tokens[:4, 1:]), (tokens[4:, :-1], tokens[4:, 1:])]
    lm = DecoderOnlyLM(12, d_model=32, num_heads=2, dropout=0.0)
    history = train(lm, batches, 30, 1e-2, pad_id=-100, progress=False)  # list reused
    assert history[-1] < 0.5 * history[0]
    assert lm.training


def test_custom_loss_function_is_used() -> None:
    model = torch.nn.Linear(3, 1)
    calls = []

    def loss_fn(m, batch):
        calls.append(batch)
        return m(batch).pow(2).mean()

    history = train(model, [torch.ones(4, 3)], 3, loss_fn=loss_fn, progress=False)
    assert len(calls) == 3 and len(history) == 3


def test_training_errors_name_the_values() -> None:
    model = Transformer(5, 5, 8, 2)
    data = [make_reversal_data(4, num_symbols=2)]
    with pytest.raises(ValueError, match="steps must be a positive int, got 0"):
        train(model, data, 0, progress=False)
    with pytest.raises(ValueError, match="lr must be > 0, got 0"):
        train(model, data, 1, 0, progress=False)
    with pytest.raises(ValueError, match="warmup_steps must be a non-negative int, got -1"):
        train(model, data, 1, warmup_steps=-1, progress=False)
    with pytest.raises(ValueError, match="a batch must be a Seq2SeqData or an .* got str"):
        train(model, ["oops"], 1, progress=False)
    with pytest.raises(ValueError, match="batches ran out after 1 steps"):
        train(model, iter(data), 2, progress=False)


def test_exact_match_needs_every_token_and_the_eos_position() -> None:
    target = torch.tensor([[5, 6, 2, 0], [7, 2, 0, 0], [4, 4, 4, 2]])
    pred = torch.tensor([[5, 6, 2], [7, 8, 2], [4, 4, 4]])  # right, wrong token, no EOS yet
    assert exact_match_accuracy(pred, target) == pytest.approx(1 / 3)
    assert exact_match_accuracy(target, target) == 1.0
    with pytest.raises(ValueError, match=r"pred must be a 2-D tensor of ids \(B, T\), got \(3,\)"):
        exact_match_accuracy(torch.ones(3), target)
    with pytest.raises(ValueError, match="different batch sizes"):
        exact_match_accuracy(pred[:2], target)
