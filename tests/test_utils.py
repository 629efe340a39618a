"""attention.utils: device selection, seeding and error demonstrations."""

import random

import numpy as np
import pytest
import torch

from attention import expect_error, get_device, set_seed


def test_get_device_env_override_cpu(monkeypatch):
    monkeypatch.setenv("ATTENTION_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_get_device_env_override_strips_whitespace(monkeypatch):
    monkeypatch.setenv("ATTENTION_DEVICE", "  cpu \n")
    assert get_device() == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cpu:abc"])
def test_get_device_rejects_invalid_name(monkeypatch, name):
    monkeypatch.setenv("ATTENTION_DEVICE", name)
    with pytest.raises(ValueError, match=rf"ATTENTION_DEVICE='{name}' is not a device name"):
        get_device()


def test_get_device_rejects_cuda_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("ATTENTION_DEVICE", "cuda:1")
    with pytest.raises(ValueError, match=r"ATTENTION_DEVICE='cuda:1' but CUDA is not available"):
        get_device()


def test_get_device_rejects_mps_without_mps(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setenv("ATTENTION_DEVICE", "mps")
    with pytest.raises(ValueError, match=r"ATTENTION_DEVICE='mps' but MPS is not available"):
        get_device()


def test_get_device_defaults_to_cpu_without_accelerators(monkeypatch):
    monkeypatch.delenv("ATTENTION_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")


def test_get_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.delenv("ATTENTION_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device() == torch.device("mps")


def test_get_device_float64_falls_back_from_mps_to_cpu(monkeypatch):
    monkeypatch.delenv("ATTENTION_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device() == torch.device("mps")
    assert get_device(float64=True) == torch.device("cpu"), "MPS has no float64"
    monkeypatch.setenv("ATTENTION_DEVICE", "mps")
    assert get_device(float64=True) == torch.device("cpu")


def test_get_device_float64_keeps_cuda_and_cpu(monkeypatch):
    monkeypatch.delenv("ATTENTION_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device(float64=True) == torch.device("cuda")
    monkeypatch.setenv("ATTENTION_DEVICE", "cpu")
    assert get_device(float64=True) == torch.device("cpu")


def test_get_device_empty_override_means_auto(monkeypatch):
    monkeypatch.setenv("ATTENTION_DEVICE", "")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")


def test_get_device_is_cpu_on_this_machine(monkeypatch):
    monkeypatch.delenv("ATTENTION_DEVICE", raising=False)
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("an accelerator is present; the CPU default is tested with mocks above")
    assert get_device() == torch.device("cpu")


def draws() -> tuple[list[float], list[float], list[float]]:
    return (
        torch.rand(5).tolist(),
        [random.random() for _ in range(5)],
        np.random.rand(5).tolist(),
    )


@pytest.mark.parametrize("seed", [0, 1, 2**31])
def test_set_seed_makes_torch_random_numpy_repeatable(seed):
    set_seed(seed)
    first = draws()
    set_seed(seed)
    assert draws() == first
    set_seed(seed + 1)
    other = draws()
    for a, b in zip(first, other, strict=True):
        assert a != b, "a different seed must give different draws from every generator"


def test_set_seed_fixes_dropout():
    q = torch.randn(2, 8, 8)
    set_seed(7)
    a = torch.nn.functional.dropout(q, p=0.5)
    set_seed(7)
    b = torch.nn.functional.dropout(q, p=0.5)
    assert torch.equal(a, b)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", None, True])
def test_set_seed_rejects_bad_seed(seed):
    with pytest.raises(ValueError, match=r"seed must be a non-negative int, got"):
        set_seed(seed)


# ----------------------------------------------------------------------------- expect_error


def test_expect_error_prints_one_line_and_carries_on(capsys):
    with expect_error(ValueError, match=r"must be a bool tensor"):
        raise ValueError("mask must be a bool tensor, got torch.int32\nmore detail")
    assert capsys.readouterr().out == "ValueError: mask must be a bool tensor, got torch.int32\n"


def test_expect_error_accepts_subclasses_and_names_the_raised_class(capsys):
    with expect_error(LookupError):
        {}["key"]
    assert capsys.readouterr().out == "KeyError: 'key'\n"


def test_expect_error_fails_when_nothing_is_raised():
    with pytest.raises(AssertionError, match=r"expected ValueError, but nothing was raised"):
        with expect_error(ValueError):
            pass
    with pytest.raises(AssertionError, match=r"expected ValueError matching 'x', but nothing"):
        with expect_error(ValueError, match="x"):
            pass


def test_expect_error_lets_another_error_through_and_fails_on_another_message():
    with pytest.raises(TypeError, match="other"):
        with expect_error(ValueError):
            raise TypeError("other")
    with pytest.raises(AssertionError, match=r"matching 'bool', but got ValueError: shape"):
        with expect_error(ValueError, match="bool"):
            raise ValueError("shape (2, 3) does not broadcast")
