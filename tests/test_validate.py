"""attention._validate: the input checks every public entry point uses, and their messages."""

import pytest
import torch

from attention._validate import check_bool_mask, check_int, check_probability, check_token_ids


@pytest.mark.parametrize(
    ("value", "minimum", "message"),
    [
        (0, 1, "n must be a positive int, got 0"),
        (True, 1, "n must be a positive int, got True"),
        (2.0, 1, "n must be a positive int, got 2.0"),
        (-1, 0, "n must be a non-negative int, got -1"),
        (4, 5, "n must be an int >= 5, got 4"),
        ("3", None, "n must be an int, got '3'"),
    ],
)
def test_check_int_names_the_value_and_what_was_expected(value, minimum, message) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        check_int("n", value, minimum)


def test_check_int_accepts_ints_from_the_minimum() -> None:
    check_int("n", 1)
    check_int("n", 0, minimum=0)
    check_int("n", -7, minimum=None)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, True, "0.1"])
def test_check_probability_refuses_what_is_not_in_0_1(p) -> None:
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        check_probability("dropout", p)


def test_check_bool_mask_names_the_dtype_the_meaning_and_the_hint() -> None:
    mask = torch.ones(2, 2, dtype=torch.bool)
    assert check_bool_mask("mask", mask) is mask
    with pytest.raises(ValueError, match=r"mask must be a bool tensor \(True = keep\), got torch"):
        check_bool_mask("mask", mask.int(), "True = keep")
    with pytest.raises(ValueError, match=r"got list; use mask.bool\(\)$"):
        check_bool_mask("mask", [[True]], hint="use mask.bool()")


def test_check_token_ids_checks_dtype_shape_and_range() -> None:
    check_token_ids("ids", torch.tensor([[0, 4]]), 5)
    with pytest.raises(ValueError, match=r"ids must be in \[0, 5\), got \[0, 5\]"):
        check_token_ids("ids", torch.tensor([[0, 5]]), 5)
    with pytest.raises(ValueError, match=r"ids must be a torch.long tensor \(B, T\)"):
        check_token_ids("ids", torch.tensor([[0, 4]], dtype=torch.int32), 5, long_only=True)
    with pytest.raises(
        ValueError, match=r"ids must be an int tensor \(B, T\), got torch.int64 \(2,\)"
    ):
        check_token_ids("ids", torch.tensor([0, 4]), 5)
