"""attention.checks.alignment (chapter 12): the right reading passes, each usual mistake is named.

The checker draws fresh random maps on every call, so each mistake is checked several times.
"""

import pytest

from attention.checks import check_alignment

REPEATS = 5  # fresh draws per mistake


def diagnosis(check, fn) -> str:
    with pytest.raises(AssertionError) as info:
        check(fn)
    return str(info.value)


# ----------------------------------------------------------------------------- alignment


def right_alignment(maps):
    return maps["cross"][-1].mean(dim=1).argmax(dim=-1)


def test_check_alignment_passes_the_right_reading(capsys):
    for _ in range(REPEATS):
        check_alignment(right_alignment)
    check_alignment(lambda maps: right_alignment(maps).float())  # float indices are accepted
    assert capsys.readouterr().out.startswith("check_alignment: all 2 random sets of maps passed")


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (lambda m: m["encoder"][-1].mean(1).argmax(-1), "you read the encoder's self-attention"),
        (
            lambda m: m["decoder_self"][-1].mean(1).argmax(-1),
            "you read the decoder's self-attention",
        ),
        (lambda m: m["cross"][0].mean(1).argmax(-1), "you read the first decoder layer"),
        (lambda m: m["cross"].mean((0, 2)).argmax(-1), "you averaged over the layers too"),
        (lambda m: m["cross"][-1].amax(1).argmax(-1), "the largest weight of any head"),
        (lambda m: m["cross"][-1][:, 0].argmax(-1), "you used one head"),
        (lambda m: m["cross"][-1].mean(1).argmax(-2), "the argmax runs over the target axis"),
        (lambda m: m["cross"][-1].mean(1), "you returned the averaged weights"),
        (lambda m: m["cross"][-1].mean(1).argmax(-1).tolist(), "expected a tensor of indices"),
    ],
    ids=[
        "encoder",
        "decoder-self",
        "first-layer",
        "layer-mean",
        "head-max",
        "one-head",
        "wrong-axis",
        "weights",
        "list",
    ],  # fmt: skip
)
def test_check_alignment_names_the_mistake(mistake, expected):
    for _ in range(REPEATS):
        assert expected in diagnosis(check_alignment, mistake)
