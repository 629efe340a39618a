"""attention.checks.decoder (chapter 06): correct layers pass, and each usual mistake is named.

The checker draws fresh cases on every call, so each mistake is checked several times.
"""

from __future__ import annotations

import pytest
import torch

from attention import causal_mask, padding_mask
from attention.checks import check_decoder_layer

from .test_encoder import REPEATS, diagnosis, sublayer


def learner_decoder(
    *,
    order="post",
    no_residual=(),
    norms=(0, 1, 2),
    causal="tril",
    padding="cross",
    cross_kv="memory",
    swap_attn=False,
    no_cross=False,
):
    """A learner's decoder layer, right by default, with one knob per usual mistake."""

    def decoder_layer(y, memory, src_lengths, self_attn, cross_attn, ffn, *all_norms):
        T, S = y.shape[1], memory.shape[1]  # target and source tokens
        norm1, norm2, norm3 = (all_norms[i] for i in norms)
        ones = torch.ones(T, T, dtype=torch.bool)
        tri = {"tril": ones.tril(), "none": ones, "triu": ones.triu(), "strict": ones.tril(-1)}
        self_mask, pad = tri[causal], padding_mask(src_lengths, S)[:, None, None, :]
        cross_mask = {"cross": pad, "none": None, "inverted": ~pad, "self": None}[padding]
        if padding == "self":
            self_mask = self_mask & pad
        if swap_attn:
            self_attn, cross_attn = cross_attn, self_attn
        kv = {"memory": memory, "input": y, "hidden": None}[cross_kv]
        h = sublayer(
            y, lambda t: self_attn(t, mask=self_mask)[0], norm1, order, 0 not in no_residual
        )
        if no_cross:
            return sublayer(h, ffn, norm2, order)
        cross = lambda t: cross_attn(t, t if kv is None else kv, None, mask=cross_mask)[0]  # noqa: E731
        h = sublayer(h, cross, norm2, order, 1 not in no_residual)
        return sublayer(h, ffn, norm3, order, 2 not in no_residual)

    return decoder_layer


def test_check_decoder_layer_passes_a_correct_layer_with_one_line(capsys) -> None:
    state = torch.get_rng_state()
    for _ in range(REPEATS):
        assert check_decoder_layer(learner_decoder()) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == REPEATS
    assert lines[0].startswith("check_decoder_layer: all 3 random cases passed")
    assert torch.equal(torch.get_rng_state(), state)


def test_check_decoder_layer_passes_the_package_masks() -> None:
    def with_package_masks(y, memory, src_lengths, self_attn, cross_attn, ffn, n1, n2, n3):
        pad = padding_mask(src_lengths, memory.shape[1])[:, None, None, :]
        h = n1(y + self_attn(y, mask=causal_mask(y.shape[1]))[0])
        h = n2(h + cross_attn(h, memory, memory, mask=pad)[0])
        return n3(h + ffn(h))

    check_decoder_layer(with_package_masks)


@pytest.mark.parametrize(
    ("knobs", "expected"),
    [
        (dict(causal="none"), "the causal mask is missing"),
        (dict(causal="triu"), "the causal mask points the wrong way"),
        (dict(causal="strict"), "the diagonal is masked"),
        (dict(padding="none"), "the source padding mask is missing in the cross-attention"),
        (dict(padding="inverted"), "the source padding mask is inverted"),
        (dict(swap_attn=True), "self_attn and cross_attn are swapped"),
        (dict(no_cross=True), "the cross-attention sub-layer is missing"),
        (dict(order="pre"), "you wrote a pre-LN layer"),
        (dict(order="norm_then_add"), "before the residual is added"),
        (dict(order="no_norm"), "the LayerNorms are missing"),
        (dict(no_residual=(0,)), "around sub-layer 1 (self-attention) is missing"),
        (dict(no_residual=(1,)), "around sub-layer 2 (cross-attention) is missing"),
        (dict(no_residual=(2,)), "around sub-layer 3 (feed-forward) is missing"),
        (dict(norms=(1, 0, 2)), "the LayerNorms are used in the wrong order"),
        (dict(norms=(2, 1, 0)), "the LayerNorms are used in the wrong order"),
    ],
)
def test_check_decoder_layer_names_each_usual_mistake(knobs, expected) -> None:
    for _ in range(REPEATS):
        assert expected in diagnosis(check_decoder_layer, learner_decoder(**knobs))


def test_check_decoder_layer_names_padding_in_the_wrong_sub_layer() -> None:
    # T != S in the first case, so the misplaced mask cannot fit there: the error is reported;
    # where T == S it runs, and the diagnosis names the mistake.
    message = diagnosis(check_decoder_layer, learner_decoder(padding="self"))
    assert "your function raised RuntimeError" in message
    assert "hint: a mask does not fit its attention" in message

    def only_on_square(y, memory, *rest):
        right = learner_decoder()(y, memory, *rest)
        wrong = learner_decoder(padding="self")
        return wrong(y, memory, *rest) if y.shape[1] == memory.shape[1] else right

    message = diagnosis(check_decoder_layer, only_on_square)
    assert "went to the self-attention instead of the cross-attention" in message


@pytest.mark.parametrize(
    ("source", "expected"),
    [("hidden", "attends over the decoder's own tokens"), ("input", "over the decoder's input y")],
)
def test_check_decoder_layer_names_keys_and_values_from_the_decoder(source, expected) -> None:
    # With T != S the source mask cannot fit the self-attention scores: a hint, then (where
    # T == S and the code runs) the diagnosis.
    message = diagnosis(check_decoder_layer, learner_decoder(cross_kv=source))
    assert "hint: a mask does not fit its attention" in message

    def only_on_square(y, memory, *rest):
        wrong = learner_decoder(cross_kv=source) if y.shape[1] == memory.shape[1] else None
        return (wrong or learner_decoder())(y, memory, *rest)

    assert expected in diagnosis(check_decoder_layer, only_on_square)


def test_check_decoder_layer_reports_queries_from_the_memory() -> None:
    def swapped_roles(y, memory, src_lengths, self_attn, cross_attn, ffn, n1, n2, n3):
        h = n1(y + self_attn(y, mask=causal_mask(y.shape[1]))[0])
        return cross_attn(memory, h, h)[0]  # queries from the memory: (B, S, D)

    message = diagnosis(check_decoder_layer, swapped_roles)
    assert "wrong output shape (2, 7, 16), expected (2, 5, 16)" in message
    assert "the queries come from the decoder" in message


def test_check_decoder_layer_reports_a_raising_stub_with_a_fixed_description() -> None:
    def stub(*args):
        raise NotImplementedError("write it here")

    message = diagnosis(check_decoder_layer, stub)
    assert "y (2, 5, 16), memory (2, 7, 16), 4 heads:" in message
    assert "your function raised NotImplementedError: write it here" in message
