"""attention.rnn: the GRU encoder–decoder with and without attention."""

import math

import pytest
import torch
from torch.testing import assert_close

from attention.additive import AdditiveAttention
from attention.data import BOS_ID, EOS_ID, PAD_ID, iterate_batches, make_reversal_data
from attention.rnn import ATTENTION_KINDS, RNNSeq2Seq
from attention.training import train

F64 = torch.float64


def model_and_batch(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    model = RNNSeq2Seq(13, 11, embed_dim=8, hidden_dim=6, attention=kind, dtype=F64)
    src = torch.tensor([[3, 4, 5, 6, 7], [8, 9, 3, 0, 0], [4, 0, 0, 0, 0]])  # lengths 5, 3, 1
    tgt = torch.tensor([[BOS_ID, 3, 4, 5, 6], [BOS_ID, 7, 8, 0, 0], [BOS_ID, 5, 0, 0, 0]])
    return model, src, tgt


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_rnn_seq2seq_shapes(kind):
    model, src, tgt = model_and_batch(kind)
    logits, weights = model.forward_with_weights(src, tgt)
    assert logits.shape == (3, 5, 11)
    assert (weights is None) == (kind == "none")
    if weights is not None:
        assert weights.shape == (3, 5, 5)
    assert_close(model(src, tgt), logits)


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_rnn_encoder_ignores_padding(kind):
    """Extra padding changes neither the states of the real tokens nor the summary."""
    model, src, _ = model_and_batch(kind)
    memory, summary = model.encode(src)
    longer = torch.cat([src, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    memory2, summary2 = model.encode(longer)
    assert_close(memory2[:, :5], memory)
    assert torch.equal(memory2[:, 5:], torch.zeros(3, 4, 12, dtype=F64))
    assert_close(summary2, summary)


def test_rnn_summary_is_last_forward_and_first_backward_state():
    model, src, _ = model_and_batch("none")
    memory, summary = model.encode(src)
    H = model.hidden_dim
    for b, n in enumerate([5, 3, 1]):
        assert_close(summary[b, :H], memory[b, n - 1, :H])  # forward direction ends at n - 1
        assert_close(summary[b, H:], memory[b, 0, H:])  # backward direction ends at 0


@pytest.mark.parametrize("kind", ["additive", "dot"])
def test_rnn_attention_weights_are_zero_on_padding_and_rows_sum_to_one(kind):
    model, src, tgt = model_and_batch(kind)
    _, weights = model.forward_with_weights(src, tgt)
    assert_close(weights.sum(-1), torch.ones(3, 5, dtype=F64))
    assert torch.equal(weights[1, :, 3:], torch.zeros(5, 2, dtype=F64))
    assert torch.equal(weights[2, :, 0], torch.ones(5, dtype=F64))  # one real token: weight 1


def test_rnn_additive_model_uses_the_package_additive_attention():
    model, src, tgt = model_and_batch("additive")
    assert isinstance(model.attention, AdditiveAttention)
    memory, summary = model.encode(src)
    s, _ = model.decoder(model.tgt_embed(tgt), torch.tanh(model.init_proj(summary))[None])
    _, weights = model.forward_with_weights(src, tgt)
    _, expected = model.attention(s, memory, memory, (src != PAD_ID)[:, None, :])
    assert_close(weights, expected)


def test_rnn_dot_model_scores_are_scaled_dot_products():
    model, src, tgt = model_and_batch("dot")
    memory, summary = model.encode(src)
    s, _ = model.decoder(model.tgt_embed(tgt), torch.tanh(model.init_proj(summary))[None])
    scores = s @ model.attention.k_proj(memory).transpose(1, 2) / math.sqrt(model.hidden_dim)
    scores = scores.masked_fill(~(src != PAD_ID)[:, None, :], float("-inf"))
    assert_close(model.forward_with_weights(src, tgt)[1], torch.softmax(scores, dim=-1))


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_rnn_without_attention_sees_the_source_only_through_the_summary(kind):
    """The bottleneck: replace every encoder state but keep the summary; only attention sees it."""
    model, src, tgt = model_and_batch(kind)
    memory, summary = model.encode(src)
    logits, _, _ = model.decode(tgt, memory, summary, src)
    noise = torch.randn_like(memory) * 100
    logits_noise, _, _ = model.decode(tgt, noise, summary, src)
    assert torch.equal(logits_noise, logits) == (kind == "none")


def test_rnn_decode_step_by_step_equals_teacher_forcing():
    model, src, tgt = model_and_batch("additive")
    memory, summary = model.encode(src)
    full, weights, _ = model.decode(tgt, memory, summary, src)
    state, steps, step_weights = None, [], []
    for t in range(tgt.shape[1]):
        logits, w, state = model.decode(tgt[:, t : t + 1], memory, summary, src, state)
        steps.append(logits)
        step_weights.append(w)
    assert_close(torch.cat(steps, dim=1), full)
    assert_close(torch.cat(step_weights, dim=1), weights)


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_rnn_generate_equals_argmax_of_teacher_forcing_on_its_own_output(kind):
    model, src, _ = model_and_batch(kind, seed=3)
    generated = model.generate(src, 6, bos_id=BOS_ID, eos_id=EOS_ID)
    assert generated.shape[0] == 3 and generated.shape[1] <= 6
    tgt_in = torch.cat([torch.full((3, 1), BOS_ID), generated[:, :-1]], dim=1)
    argmax = model(src, tgt_in).argmax(-1)  # (B, n)
    for b in range(3):
        row = generated[b].tolist()
        n = row.index(EOS_ID) + 1 if EOS_ID in row else len(row)
        assert argmax[b, :n].tolist() == row[:n]
        assert all(t == PAD_ID for t in row[n:])


def test_rnn_generate_restores_training_mode():
    model, src, _ = model_and_batch("dot")
    model.train()
    model.generate(src, 3, bos_id=BOS_ID, eos_id=EOS_ID)
    assert model.training


def test_rnn_attention_model_learns_short_reversal():
    torch.set_num_threads(1)
    data = make_reversal_data(1000, min_len=2, max_len=4, seed=1)
    torch.manual_seed(0)
    model = RNNSeq2Seq(13, 13, embed_dim=16, hidden_dim=32, attention="additive")
    history = train(model, iterate_batches(data, 32, seed=0), 80, 1e-2, progress=False)
    assert sum(history[-5:]) < 0.2 * sum(history[:5])  # 2.3 -> 0.13 seen


def test_rnn_errors():
    with pytest.raises(ValueError, match="attention must be one of"):
        RNNSeq2Seq(5, 5, attention="bahdanau")
    with pytest.raises(ValueError, match="hidden_dim must be a positive int"):
        RNNSeq2Seq(5, 5, hidden_dim=0)
    model = RNNSeq2Seq(5, 5, 4, 4)
    with pytest.raises(ValueError, match="at least one non-pad token"):
        model.encode(torch.tensor([[3, 4], [0, 0]]))
    with pytest.raises(ValueError, match="src must be a torch.long tensor"):
        model.encode(torch.tensor([[3.0, 4.0]]))
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        model.generate(torch.tensor([[3, 4]]), 0, bos_id=BOS_ID, eos_id=EOS_ID)
