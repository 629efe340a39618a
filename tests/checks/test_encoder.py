"""attention.checks.encoder (chapter 06): correct layers pass, and each usual mistake is named.

The checkers draw fresh cases on every call, so each mistake is checked several times: the
diagnosis must hold on every draw, not only on a lucky one.
"""

from __future__ import annotations

import pytest
import torch

from attention import EncoderLayer
from attention.checks import check_encoder_layer

REPEATS = 3  # fresh draws per mistake


def sublayer(x, f, norm, order="post", residual=True):
    """One residual + LayerNorm step, right by default (post-LN), or with a usual mistake."""
    keep = x if residual else 0.0
    if order == "pre":
        return keep + f(norm(x))
    if order == "norm_then_add":
        return keep + norm(f(x))
    if order == "no_norm":
        return keep + f(x)
    return norm(keep + f(x))


def learner_encoder(*, order="post", no_residual=(), swap_norms=False, mask="ok", tuple_out=False):
    """A learner's encoder layer, right by default, with one knob per usual mistake."""

    def encoder_layer(x, m, self_attn, ffn, norm1, norm2):
        if swap_norms:
            norm1, norm2 = norm2, norm1
        if m is not None and mask != "ok":
            m = None if mask == "ignored" else ~m
        h = sublayer(x, lambda t: self_attn(t, mask=m)[0], norm1, order, 0 not in no_residual)
        out = sublayer(h, ffn, norm2, order, 1 not in no_residual)
        return (out, None) if tuple_out else out

    return encoder_layer


def diagnosis(check, fn) -> str:
    with pytest.raises(AssertionError) as info:
        check(fn)
    message = str(info.value)
    assert message.startswith(f"{check.__name__} failed on ")
    return message


# ----------------------------------------------------------------------------- encoder layer


def test_check_encoder_layer_passes_a_correct_layer_with_one_line(capsys) -> None:
    state = torch.get_rng_state()
    for _ in range(REPEATS):
        assert check_encoder_layer(learner_encoder()) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == REPEATS
    assert lines[0].startswith("check_encoder_layer: all 3 random cases passed")
    assert torch.equal(torch.get_rng_state(), state)  # notebooks' seeded numbers stay put


def test_check_encoder_layer_agrees_with_the_package_layer_but_refuses_it() -> None:
    """The checker's reference is EncoderLayer's computation; calling EncoderLayer is refused."""

    def via_package(x, mask, self_attn, ffn, norm1, norm2):
        layer = EncoderLayer(x.shape[-1], self_attn.num_heads, 1, dtype=x.dtype).eval()
        layer.self_attn, layer.ffn, layer.self_attn_norm, layer.ffn_norm = (
            self_attn,
            ffn,
            norm1,
            norm2,
        )
        return layer(x, mask)

    with pytest.raises(AssertionError, match="your function called attention.EncoderLayer"):
        check_encoder_layer(via_package)


@pytest.mark.parametrize(
    ("knobs", "expected"),
    [
        (dict(order="pre"), "you wrote a pre-LN layer"),
        (dict(order="norm_then_add"), "applied to the sub-layer's output before the residual"),
        (dict(order="no_norm"), "the LayerNorms are missing"),
        (dict(no_residual=(0,)), "residual connection around the self-attention is missing"),
        (dict(no_residual=(1,)), "residual connection around the feed-forward block is missing"),
        (dict(swap_norms=True), "norm1 and norm2 are swapped"),
        (dict(mask="ignored"), "the padding mask is ignored"),
        (dict(mask="inverted"), "the mask is inverted"),
        (dict(tuple_out=True), "return only the output tensor"),
    ],
)
def test_check_encoder_layer_names_each_usual_mistake(knobs, expected) -> None:
    for _ in range(REPEATS):
        assert expected in diagnosis(check_encoder_layer, learner_encoder(**knobs))


def test_check_encoder_layer_reports_a_raising_function_and_a_forgotten_index() -> None:
    def stub(x, mask, self_attn, ffn, norm1, norm2):
        raise NotImplementedError("write it here")

    message = diagnosis(check_encoder_layer, stub)
    assert "x (2, 5, 16), 4 heads, no mask" in message  # fixed text: notebooks store it
    assert "your function raised NotImplementedError: write it here" in message

    def no_index(x, mask, self_attn, ffn, norm1, norm2):
        h = norm1(x + self_attn(x, mask=mask))  # the (out, weights) tuple, not out
        return norm2(h + ffn(h))

    assert "take [0]" in diagnosis(check_encoder_layer, no_index)


def test_check_encoder_layer_reports_wrong_shapes_and_non_finite_outputs() -> None:
    message = diagnosis(check_encoder_layer, lambda x, *rest: x[:, :-1])
    assert "wrong output shape (2, 4, 16), expected (2, 5, 16)" in message
    assert "NaN or inf" in diagnosis(check_encoder_layer, lambda x, *rest: x / 0.0)
    assert "an unknown" not in diagnosis(check_encoder_layer, lambda x, *rest: x + 1.0)


def test_check_encoder_layer_is_not_fooled_by_changing_the_parts() -> None:
    def vandal(x, mask, self_attn, ffn, norm1, norm2):
        with torch.no_grad():
            for norm in (norm1, norm2):
                norm.weight.fill_(1.0)
                norm.bias.zero_()
        return learner_encoder()(x, mask, self_attn, ffn, norm1, norm2)

    assert "differs from the reference" in diagnosis(check_encoder_layer, vandal)
