"""Measure attention's cost: FLOPs, time and peak memory on the current device, and power laws.

Every chapter measures with these helpers, so that the notebooks and
``benchmarks/attention_bench.py`` measure the same way: FLOPs with PyTorch's own counter on the
math path of attention, time with ``torch.utils.benchmark`` on one CPU thread, memory as the
peak above the baseline (the CUDA allocator's statistics on a GPU, the resident set size on a
CPU).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import math
import multiprocessing
import os
import statistics
import warnings
from collections.abc import Callable, Sequence

import torch

from ._validate import check_int

__all__ = ["attention_flops_formula", "count_flops", "fit_power_law", "peak_memory", "time_call"]


def count_flops(fn: Callable, *args, **kwargs) -> int:
    """Run ``fn(*args, **kwargs)`` once and return the FLOPs PyTorch's flop counter saw.

    ``torch.utils.flop_counter.FlopCounterMode`` counts 2 FLOPs per multiply-add of the matrix
    products (``mm``, ``bmm``, ``addmm``, convolutions, the fused attention kernels it knows)
    and nothing for element-wise work such as softmax or bias additions. It misses fused CPU
    kernels: it counts 0 for the CPU flash path of ``F.scaled_dot_product_attention`` and for a
    float32 ``nn.LSTM`` (torch 2.13). So ``fn`` runs with SDPA's math backend, which computes
    attention as matrix products the counter sees (the full ``T x S`` scores, even when causal);
    count recurrent layers in float64, whose CPU path is not fused. The counter does not know
    sparse products either: ``torch.sparse.mm(A, X)`` with ``A`` sparse is counted here as 2
    FLOPs per stored entry of ``A`` and column of ``X`` (one multiply-add each), so a graph layer
    on a sparse adjacency costs what its edges cost.

    Args:
        fn: the callable to run (once, with autograd as it is: wrap it in ``torch.no_grad()``
            to skip building the graph).
        *args: its positional arguments.
        **kwargs: its keyword arguments.

    Returns:
        The total FLOP count.

    Introduced in chapter 04 (equal FLOPs of the explicit and fused paths); used again in chapters
    08, 09 and 11.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode  # here: it imports triton if present

    sparse = {torch.ops.aten._sparse_addmm: _sparse_addmm_flops}  # torch.sparse.mm on the CPU
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False, custom_mapping=sparse) as c:
        fn(*args, **kwargs)
    return c.get_total_flops()


def _sparse_addmm_flops(bias, sparse, dense, *args, out_val=None, **kwargs) -> int:
    """FLOPs of ``bias + sparse @ dense``: a multiply-add per stored entry and column."""
    return 2 * sparse._nnz() * dense.shape[-1]


_sparse_addmm_flops._get_raw = True  # FlopCounterMode passes the tensors, not their shapes


def attention_flops_formula(T: int, D: int) -> int:
    """Return the FLOPs of one multi-head self-attention layer on one sequence: 8TD² + 4T²D.

    The four projections cost ``4 * 2TD²``; the scores ``q k^T`` and the weighted sum of values
    cost ``2T²D`` each, whatever the number of heads (each head does ``2T²Dh`` and ``H Dh = D``).
    The article's O(T²D²) is wrong: the cost is O(T²D + TD²) (ERRATA R6).

    Args:
        T: tokens in the sequence.
        D: model width ``d_model``.

    Returns:
        The FLOP count, as ``count_flops`` counts them (biases and softmax not included).

    Introduced in chapter 04 (the fused path's FLOPs); derived in chapter 09.
    """
    check_int("T", T, minimum=0)
    check_int("D", D, minimum=0)
    return 8 * T * D * D + 4 * T * T * D


def _device_of(device: torch.device | str | None, args: Sequence) -> torch.device:
    """The device given, else that of the first tensor argument, else the CPU."""
    if device is not None:
        return torch.device(device)
    return next((a.device for a in args if isinstance(a, torch.Tensor)), torch.device("cpu"))


def time_call(
    fn: Callable, *args, threads: int | None = 1, min_run_time: float = 0.2, **kwargs
) -> float:
    """Return the median time in seconds of one call of ``fn(*args, **kwargs)``.

    The course's one timing policy, built on ``torch.utils.benchmark.Timer.blocked_autorange``:
    calls are grouped in blocks long enough for the clock's overhead to vanish (finding the
    block size is the warm-up), blocks run for at least ``min_run_time`` seconds, and the
    median time per call over the blocks is returned. The timer synchronises a GPU before it
    reads the clock, so asynchronous kernels are counted. PyTorch runs on ``threads`` CPU
    threads during the timing and gets its own number back afterwards: one by default, since
    on a busy machine a call split over several threads waits for whichever is descheduled.
    Compare times as ratios at the largest sizes, with wide margins; exact claims rest on
    ``count_flops`` and ``peak_memory``.

    Args:
        fn: the callable to time.
        *args: its positional arguments.
        threads: PyTorch's CPU threads during the timing; None keeps the current number.
        min_run_time: the least total time of the measured blocks, in seconds.
        **kwargs: its keyword arguments.

    Returns:
        The median time of one call, in seconds.

    Introduced in chapter 04 (the fused path's time); used in chapters 08, 09 and 11.
    """
    from torch.utils.benchmark import Timer  # imported here: slow, and needed only to time

    threads = torch.get_num_threads() if threads is None else threads
    check_int("threads", threads)
    if not min_run_time > 0:
        raise ValueError(f"min_run_time must be > 0 seconds, got {min_run_time!r}")
    call = {"fn": fn, "args": args, "kwargs": kwargs}
    timer = Timer("fn(*args, **kwargs)", globals=call, num_threads=threads)
    return timer.blocked_autorange(min_run_time=min_run_time).median


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1])  # "VmHWM:   123456 kB"


def _rss_child(conn, fn: Callable, args: tuple, kwargs: dict) -> None:
    """In the forked child: warm up, reset the high-water mark, call once, send the growth."""
    try:
        torch.set_num_threads(1)  # the parent's OpenMP thread pool does not survive fork()
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        fn(*args, **kwargs)  # warm-up: one-off buffers (BLAS workspaces) join the baseline
        gc.collect()
        # Memory freed earlier (here or in the parent) stays resident in malloc's free lists, and
        # reusing it would not raise the RSS: give it back to the OS (glibc), and serve blocks
        # >= 128 KiB with fresh pages from now on (M_MMAP_THRESHOLD = -3).
        with contextlib.suppress(AttributeError):
            libc.mallopt(-3, 128 * 1024)
            libc.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # reset VmHWM, the peak resident set size, to the current VmRSS
        base = _proc_status_kib("VmRSS")
        result = fn(*args, **kwargs)  # held until the peak is read, as an output would be
        conn.send(("ok", (_proc_status_kib("VmHWM") - base) * 1024))
        del result
    except BaseException as err:  # report anything to the parent, which raises it
        conn.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        conn.close()


def peak_memory(
    fn: Callable,
    *args,
    device: torch.device | str | None = None,
    timeout: float = 600.0,
    **kwargs,
) -> int:
    """Return the peak memory in bytes that one call of ``fn(*args, **kwargs)`` adds.

    The output is included (it is held until the peak is read); the inputs, which exist
    before the call, are not. What is measured depends on the device:

    - **CUDA**: ``torch.cuda.max_memory_allocated`` minus ``memory_allocated`` before the call,
      after ``reset_peak_memory_stats``: the tensors' bytes, exactly.
    - **CPU** (Linux): the call runs in a forked child process, single-threaded, after one
      warm-up call there; the result is the rise of its peak resident set size (``VmHWM``,
      reset through ``/proc/self/clear_refs``) over its resident size before the call. That is
      real memory, allocator overhead included, to within a few hundred KiB (the kernel
      counts resident pages in per-CPU batches). ``fn`` may be a lambda: nothing is pickled.

    Args:
        fn: the callable to measure.
        *args: its positional arguments.
        device: ``cuda`` or ``cpu``; by default that of the first tensor argument, else the CPU.
        timeout: seconds to wait for the child process on a CPU.
        **kwargs: its keyword arguments.

    Returns:
        The peak extra memory in bytes.

    Raises:
        ValueError: for other devices, or on a CPU without ``/proc`` and ``fork`` (not Linux).
        RuntimeError: if ``fn`` raised in the child or it did not answer within ``timeout``.

    Introduced in chapter 04 (the fused path's memory); used in chapters 09 and 11.
    """
    device = _device_of(device, args)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        result = fn(*args, **kwargs)
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - base
        del result
        return peak
    if device.type != "cpu":
        raise ValueError(f"peak_memory measures cuda and cpu devices, got device={device}")
    if (
        not os.path.exists("/proc/self/clear_refs")
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        raise ValueError("peak_memory on the CPU needs Linux (/proc/self/clear_refs and fork)")
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_rss_child, args=(sender, fn, args, kwargs), daemon=True)
    with warnings.catch_warnings():  # Python >= 3.12 warns that fork() and threads may deadlock
        warnings.simplefilter("ignore", DeprecationWarning)
        child.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            raise RuntimeError(f"peak_memory: no answer from the child within timeout={timeout}s")
        status, value = receiver.recv()
    except EOFError:
        status, value = "error", f"the child process died (exit code {child.exitcode})"
    finally:
        if child.is_alive():
            child.join(5)
        if child.is_alive():
            child.kill()
        receiver.close()
    if status != "ok":
        raise RuntimeError(f"peak_memory: the call failed in the child process: {value}")
    return value


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Fit ``y = c * x^p`` by least squares on ``log y = log c + p log x``; return ``(p, c)``.

    Time and memory of materialised attention grow like ``T^2`` at large T, so the fitted
    exponent ``p`` is close to 2 there (lower at small T, where the O(T) parts still weigh).

    Args:
        x: positive sizes, at least two distinct.
        y: positive measurements, one per size.

    Returns:
        ``(exponent, prefactor)``.

    Shapes:
        x ``(n,)``, y ``(n,)`` -> two floats.

    Introduced in chapter 09 (the cost of attention).
    """
    x, y = [float(a) for a in x], [float(b) for b in y]
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"need two sequences of equal length >= 2, got {len(x)} and {len(y)}")
    bad = [v for v in x + y if not (v > 0 and math.isfinite(v))]
    if bad:
        raise ValueError(f"all values must be positive and finite for a log-log fit, got {bad[0]}")
    lx, ly = [math.log(v) for v in x], [math.log(v) for v in y]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    var = sum((a - mx) ** 2 for a in lx)
    if var == 0:
        raise ValueError(f"x must hold at least two distinct values, got {x}")
    slope = sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / var
    return slope, math.exp(my - slope * mx)
