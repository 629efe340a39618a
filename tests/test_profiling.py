"""attention.profiling: FLOPs as PyTorch counts them, timing, peak memory, power-law fits."""

from __future__ import annotations

import math
import sys
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attention import (
    MultiHeadAttention,
    attention_flops_formula,
    count_flops,
    fit_power_law,
    flash_attention,
    peak_memory,
    time_call,
)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
needs_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="CPU peak memory needs Linux"
)


@pytest.mark.parametrize(("T", "D", "H"), [(1, 8, 2), (7, 16, 4), (33, 48, 3), (64, 512, 8)])
def test_flop_formula_equals_flop_counter_for_both_mha_modules(T, D, H):
    x = torch.randn(2, T, D)
    ours, theirs = MultiHeadAttention(D, H), nn.MultiheadAttention(D, H, batch_first=True)
    expected = 2 * attention_flops_formula(T, D)  # two sequences in the batch
    assert count_flops(ours, x) == expected
    assert count_flops(theirs, x, x, x) == expected  # need_weights=True: explicit bmm
    assert attention_flops_formula(T, D) == 8 * T * D**2 + 4 * T**2 * D


def test_tiling_keeps_the_flops_of_attention():
    B, H, T, S, Dk, Dv = 2, 3, 37, 29, 8, 5
    q, k, v = torch.randn(B, H, T, Dk), torch.randn(B, H, S, Dk), torch.randn(B, H, S, Dv)
    naive = count_flops(lambda: torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v)
    tiled = count_flops(flash_attention, q, k, v, block_size=(5, 4))
    assert naive == tiled == 2 * B * H * T * S * (Dk + Dv)
    assert count_flops(flash_attention, q, k, v, causal=True, block_size=4) < tiled


@pytest.mark.parametrize(("T", "D"), [(-1, 8), (4, 2.0), (True, 8)])
def test_flop_formula_rejects_bad_sizes_naming_them(T, D):
    with pytest.raises(ValueError, match="must be a non-negative int, got"):
        attention_flops_formula(T, D)


def test_fit_power_law_recovers_exponent_and_prefactor():
    x = [128, 256, 512, 1024, 2048]
    p, c = fit_power_law(x, [3.0 * t**2 for t in x])
    assert p == pytest.approx(2.0, abs=1e-12) and c == pytest.approx(3.0, rel=1e-9)
    gen = torch.Generator().manual_seed(0)
    noise = (1 + 0.05 * torch.randn(len(x), generator=gen)).tolist()
    p, _ = fit_power_law(x, [0.5 * t**1.5 * e for t, e in zip(x, noise, strict=True)])
    assert abs(p - 1.5) < 0.05


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([1, 2], [1], "equal length >= 2, got 2 and 1"),
        ([4], [4], "equal length >= 2, got 1 and 1"),
        ([1, 2], [0, 3], "positive and finite for a log-log fit, got 0.0"),
        ([1, -2], [1, 3], "got -2.0"),
        ([3, 3], [1, 2], "at least two distinct values"),
        ([1, 2], [1, math.nan], "got nan"),
    ],
)
def test_fit_power_law_rejects_bad_data_naming_it(x, y, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(x, y)


def test_time_call_returns_the_median_seconds_of_one_call():
    def nap():
        time.sleep(0.002)

    seconds = time_call(nap, min_run_time=0.05)
    assert 0.0019 < seconds < 0.05


def test_time_call_runs_on_one_thread_and_gives_the_threads_back():
    seen, before = set(), torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        time_call(lambda: seen.add(torch.get_num_threads()), min_run_time=0.01)
        assert seen == {1} and torch.get_num_threads() == 2
        seen.clear()
        time_call(lambda: seen.add(torch.get_num_threads()), threads=None, min_run_time=0.01)
        assert seen == {2}
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(threads=0), "threads must be a positive int, got 0"),
        (dict(min_run_time=0), "min_run_time must be > 0 seconds, got 0"),
    ],
)
def test_time_call_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        time_call(lambda: None, **kwargs)


def test_count_flops_sees_the_fused_attention_of_the_cpu():
    q = torch.randn(1, 2, 16, 8)  # (B, H, T, Dh)
    expected = 4 * 1 * 2 * 16 * 16 * 8  # q k^T and weights @ v
    assert count_flops(F.scaled_dot_product_attention, q, q, q) == expected
    assert count_flops(F.scaled_dot_product_attention, q, q, q, is_causal=True) == expected


@needs_linux
def test_peak_memory_on_cpu_sees_a_temporary_and_the_output():
    mib = 2**20
    x = torch.ones(8 * mib // 4)  # 8 MiB of float32: an input, not counted

    def make():
        tmp = x * 2  # 8 MiB, freed before returning
        return tmp[: 4 * mib // 4] + 1  # 4 MiB output, held until the peak is read

    assert 11.5 * mib <= peak_memory(make) < 14 * mib  # the kernel counts RSS in batches
    assert peak_memory(lambda: x.sum()) < 1 * mib


@needs_linux
def test_peak_memory_reports_the_error_of_the_call():
    def broken():
        raise KeyError("boom")

    with pytest.raises(RuntimeError, match="failed in the child process: KeyError: 'boom'"):
        peak_memory(broken)


def test_peak_memory_refuses_other_devices():
    with pytest.raises(ValueError, match="measures cuda and cpu devices, got device=meta"):
        peak_memory(lambda: None, device="meta")


@needs_cuda
def test_cuda_timing_and_peak_memory_count_the_gpu_work():
    a = torch.randn(2048, 2048, device="cuda")
    assert time_call(torch.mm, a, a, min_run_time=0.05) > 0
    assert peak_memory(lambda: a @ a) >= 2048 * 2048 * 4
