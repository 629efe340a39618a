"""Benchmark attention implementations over sequence lengths, on the CPU or a CUDA GPU.

Compares materialised attention (the T x S matrix in memory), the course's
``attention.scaled_dot_product_attention``, the tiled ``attention.flash_attention`` (a Python
loop over tiles) and PyTorch's fused ``F.scaled_dot_product_attention``; on CUDA also each SDPA
backend and the course's Triton kernel ``attention.triton_flash_attention``. For each head
width, method and length it reports the median time, the achieved TFLOP/s, the time relative to
torch SDPA, the peak extra memory and the error against torch SDPA; then the exponent p of a
fitted power law time ~ T^p and memory ~ T^p. Self-attention: S = T. Chapters 09 and 11 cite it.

    python benchmarks/attention_bench.py                      # CPU: float32, T = 256 .. 8192
    python benchmarks/attention_bench.py --quick --json out.json

The GPU run that chapter 11 renders (bfloat16, B = 1, H = 8, Dh = 64 and 128, T = 512 .. 32768;
a few minutes on an H100), written to ``benchmarks/results/<card>.json`` with the card, the
torch and triton versions, the date and this command:

    python benchmarks/attention_bench.py --device cuda --head-dim 64 128 --save
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import math
import platform
import re
import shlex
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

import attention
from attention.profiling import fit_power_law, peak_memory, time_call
from attention.triton_attention import triton_available, triton_flash_attention

RESULTS = Path(__file__).resolve().parent / "results"

DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
CUDA_BACKENDS = ("math", "flash", "efficient", "cudnn")  # torch.nn.attention.SDPBackend names
MATERIALISED = {"naive": 2, "attention.sdpa": 3}  # T x T matrices alive at once, at most
GOAL_T = 16384  # the length at which the Triton kernel's goal (>= 50% of SDPA) is read


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(Dk)) v with the whole (B, H, T, S) matrix in memory."""
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (B, H, T, Dk) @ (B, H, Dk, S)
    return torch.softmax(scores, dim=-1) @ v  # (B, H, T, S) @ (B, H, S, Dv) -> (B, H, T, Dv)


def sdpa_backend(name: str):
    """torch SDPA restricted to one backend; calling it raises RuntimeError where it cannot run."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    enum = {
        "math": "MATH",
        "flash": "FLASH_ATTENTION",
        "efficient": "EFFICIENT_ATTENTION",
        "cudnn": "CUDNN_ATTENTION",
    }[name]
    backend = getattr(SDPBackend, enum, None)

    def run(q, k, v):
        if backend is None:
            raise RuntimeError(f"this torch has no SDPA backend SDPBackend.{enum}")
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v)

    return run


def methods(device: torch.device, block_size: tuple[int, int] | None) -> dict:
    """The methods to compare, by name: each is called as fn(q, k, v)."""
    tiles = {} if block_size is None else {"block_size": tuple(block_size)}
    found = {
        "naive": naive_attention,
        "attention.sdpa": lambda q, k, v: attention.scaled_dot_product_attention(q, k, v)[0],
        "flash_attention": lambda q, k, v: attention.flash_attention(q, k, v, **tiles),
        "torch.sdpa": F.scaled_dot_product_attention,
    }
    if device.type == "cuda":
        found.update({f"torch.sdpa[{b}]": sdpa_backend(b) for b in CUDA_BACKENDS})
        if triton_available():
            found["triton_flash_attention"] = triton_flash_attention
    return found


def with_backward(fn):
    """fn(q, k, v) followed by the backward pass of its output's sum (q, k, v need grad)."""

    def step(q, k, v):
        out = fn(q, k, v)
        out.backward(torch.ones_like(out))
        return out.detach()

    return step


def sdpa_default(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> dict:
    """The SDPA backend PyTorch's dispatcher picks for these inputs, causal and not."""
    from torch.nn.attention import SDPBackend

    choose = getattr(torch, "_fused_sdp_choice", None)  # private: absent in some versions
    if choose is None:
        return {}
    names = {int(b): n for n, b in SDPBackend.__members__.items()}
    return {f"is_causal={c}": names.get(choose(q, k, v, is_causal=c), "?") for c in (False, True)}


def kernels_seen(fn, q, k, v) -> str:
    """The CUDA kernels one call launches, as a profiler sees them (names shortened)."""
    from torch.profiler import ProfilerActivity, profile

    try:  # a profiler hiccup must not cost the GPU run its timings
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn(q, k, v)
            torch.cuda.synchronize()
        names = {e.key for e in prof.key_averages() if e.device_type.name == "CUDA"}
    except Exception as err:  # noqa: BLE001
        return f"(the profiler failed: {type(err).__name__}: {err})"
    return ", ".join(sorted({re.sub(r"[<(].*", "", n)[:60] for n in names}))


def card_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name on Linux (the processor type elsewhere)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError, StopIteration):
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    return platform.processor() or platform.machine()


def slug(name: str) -> str:
    """A file name for a card: 'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def memory_budget(device: torch.device) -> int:
    """Bytes that materialised methods may use: half the free device or host memory."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] // 2
    with contextlib.suppress(ValueError, OSError, KeyError):
        return os_available_bytes() // 2
    return 4 * 2**30


def os_available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    return int(fields["MemAvailable"].split()[0]) * 1024


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=None, help="cpu or cuda (default: attention.get_device())")
    p.add_argument("--lengths", type=int, nargs="+", help="sequence lengths T (= S)")
    p.add_argument("--dtype", choices=DTYPES, help="default: bfloat16 on CUDA, float32 elsewhere")
    p.add_argument("--batch", type=int, default=1, help="batch size B")
    p.add_argument("--heads", type=int, default=8, help="heads H")
    p.add_argument(
        "--head-dim", type=int, nargs="+", default=[64], help="head widths Dh (one run each)"
    )
    p.add_argument(
        "--min-run-time", type=float, default=1.0, help="seconds of timed calls per method and T"
    )
    p.add_argument(
        "--threads", type=int, help="PyTorch CPU threads while timing (default: all of them)"
    )
    p.add_argument(
        "--block-size",
        type=int,
        nargs=2,
        metavar=("BQ", "BK"),
        help="flash_attention's tiles (default: its own on CPU, 1024 1024 on CUDA)",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument(
        "--backward", action="store_true", help="time forward + backward (FLOPs: 3.5x forward)"
    )
    p.add_argument("--json", metavar="OUT", help="also write the results to this JSON file")
    p.add_argument(
        "--save", action="store_true", help="write the JSON to benchmarks/results/<card>.json"
    )
    p.add_argument("--quick", action="store_true", help="short lengths and runs (smoke test)")
    args = p.parse_args(argv)
    device = torch.device(args.device) if args.device else attention.get_device()
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but CUDA is not available")
    args.device = device
    args.dtype = DTYPES[args.dtype or ("bfloat16" if device.type == "cuda" else "float32")]
    if args.lengths is None:
        top = 32768 if device.type == "cuda" else 8192
        lo = 512 if device.type == "cuda" else 256
        args.lengths = (
            [128, 256, 512] if args.quick else [2**e for e in range(8, 16) if lo <= 2**e <= top]
        )
    if args.quick:
        args.min_run_time = min(args.min_run_time, 0.05)
    if args.block_size is None and device.type == "cuda":
        args.block_size = [1024, 1024]  # fewer, larger tiles: a GPU is bound by kernel launches
    if args.block_size is not None and min(args.block_size) < 1:
        p.error(f"--block-size must be >= 1, got {args.block_size}")
    if not args.min_run_time > 0:
        p.error(f"--min-run-time must be > 0, got {args.min_run_time}")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    for name in ("batch", "heads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if min(args.head_dim) < 1:
        p.error(f"--head-dim must be >= 1, got {args.head_dim}")
    if min(args.lengths) < 1:
        p.error(f"--lengths must be >= 1, got {args.lengths}")
    return args


def run(args: argparse.Namespace, Dh: int) -> dict:
    """Every method at every length for one head width: one entry of the results' "runs"."""
    device, dtype = args.device, args.dtype
    B, H = args.batch, args.heads  # batch, heads
    item = torch.finfo(dtype).bits // 8
    rows, budget, kernels, backend = [], memory_budget(device), {}, {}
    factor = 3.5 if args.backward else 1.0  # forward 2 matmuls; backward 5 (FlashAttention-2)
    for T in sorted(args.lengths):
        gen = torch.Generator(device=device).manual_seed(T)
        q, k, v = (
            torch.randn(B, H, T, Dh, generator=gen, device=device, dtype=dtype) for _ in range(3)
        )
        if args.backward:
            q, k, v = (t.requires_grad_() for t in (q, k, v))
        flops = factor * 4 * B * H * T * T * Dh  # q k^T and weights @ v, 2 FLOPs per multiply-add
        matrix = B * H * T * T * item  # bytes of one (B, H, T, T) matrix
        with torch.no_grad():
            ref = F.scaled_dot_product_attention(q, k, v).float()
            backend = backend or sdpa_default(q, k, v)
        for name, method in methods(device, args.block_size).items():
            fn = with_backward(method) if args.backward else method
            row = {
                "method": name,
                "T": T,
                "time_s": None,
                "tflops": None,
                "ratio_to_sdpa": None,
                "peak_bytes": None,
                "max_abs_err": None,
                "skipped": None,
            }
            rows.append(row)
            need = (2 if args.backward else 1) * MATERIALISED.get(name, 0) * matrix
            if need > budget:
                row["skipped"] = f"needs ~{need / 2**30:.1f} GiB for T x T matrices"
                continue
            try:
                out = fn(q, k, v)
            except RuntimeError as err:  # an SDPA backend that does not support this input
                row["skipped"] = str(err).strip().splitlines()[0][:120]
                continue
            err = (out.float() - ref).abs().max().item()
            row["max_abs_err"] = err if math.isfinite(err) else None  # JSON has no NaN
            del out
            if device.type == "cuda" and name not in kernels:
                kernels[name] = kernels_seen(fn, q, k, v)
            # by default all of the machine's threads: a benchmark runs alone (notebooks use one)
            row["time_s"] = time_call(
                fn, q, k, v, threads=args.threads, min_run_time=args.min_run_time
            )
            row["tflops"] = flops / row["time_s"] / 1e12
            if not args.no_memory and device.type in ("cpu", "cuda"):
                row["peak_bytes"] = peak_memory(fn, q, k, v)
        sdpa = next(r["time_s"] for r in rows if r["T"] == T and r["method"] == "torch.sdpa")
        for r in rows:
            if r["T"] == T and r["time_s"] is not None:
                r["ratio_to_sdpa"] = r["time_s"] / sdpa
    return {
        "batch": B,
        "heads": H,
        "head_dim": Dh,
        "pass": "forward+backward" if args.backward else "forward",
        "block_size": args.block_size,
        "sdpa_backend": backend,
        "kernels": kernels,
        "results": rows,
        "fits": fits(rows),
    }


def benchmark(args: argparse.Namespace, argv: list[str] | None = None) -> dict:
    """The results document: where and how it was measured, then one run per head width."""
    argv = sys.argv[1:] if argv is None else argv
    triton_version = None
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        triton_version = importlib.metadata.version("triton") if triton_available() else None
    return {
        "card": card_name(args.device),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "triton": triton_version,
        "source": "benchmarks/attention_bench.py",
        "command": shlex.join(["python", "benchmarks/attention_bench.py", *argv]),
        "device": str(args.device),
        "dtype": str(args.dtype).removeprefix("torch."),
        "threads": args.threads or torch.get_num_threads(),
        "min_run_time": args.min_run_time,
        "flops": "4 B H T^2 Dh per forward (x 3.5 with --backward), whatever the method",
        "runs": [run(args, Dh) for Dh in args.head_dim],
    }


def fits(rows: list[dict]) -> dict:
    """The power-law exponents of time and memory vs T, per method (None if < 2 lengths)."""
    out = {}
    for name in dict.fromkeys(r["method"] for r in rows):
        exps = {}
        for key in ("time_s", "peak_bytes"):
            pts = [(r["T"], r[key]) for r in rows if r["method"] == name and (r[key] or 0) > 0]
            ok = len({t for t, _ in pts}) >= 2
            exps[key] = round(fit_power_law(*zip(*pts, strict=True))[0], 3) if ok else None
        out[name] = {"time_exponent": exps["time_s"], "memory_exponent": exps["peak_bytes"]}
    return out


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def goal(run_: dict) -> tuple[int, float] | None:
    """(T, triton TFLOP/s / SDPA TFLOP/s) at GOAL_T, or at the largest T both ran; else None."""
    timed = {(r["method"], r["T"]): r["tflops"] for r in run_["results"] if r["tflops"] is not None}
    both = [t for (m, t) in timed if m == "triton_flash_attention" and ("torch.sdpa", t) in timed]
    if not both:
        return None
    T = GOAL_T if GOAL_T in both else max(both)
    return T, timed["triton_flash_attention", T] / timed["torch.sdpa", T]


def print_report(res: dict) -> None:
    print(
        f"{res['card']} ({res['device']}), torch {res['torch']}, triton {res['triton']}, "
        f"{res['threads']} threads, {res['dtype']}, median of torch.utils.benchmark blocks"
    )
    for run_ in res["runs"]:
        print(
            f"\n{run_['pass']}, B={run_['batch']} H={run_['heads']} Dh={run_['head_dim']}"
            + (f", SDPA's default backend: {run_['sdpa_backend']}" if run_["sdpa_backend"] else "")
        )
        head = f"{'method':<24}{'T':>7}{'time ms':>11}{'TFLOP/s':>9}{'x SDPA':>8}{'peak MiB':>10}"
        print(head + f"{'max err':>10}")
        for r in run_["results"]:
            line = f"{r['method']:<24}{r['T']:>7}"
            if r["skipped"]:
                print(f"{line}  skipped: {r['skipped']}")
                continue
            mib = None if r["peak_bytes"] is None else r["peak_bytes"] / 2**20
            print(
                f"{line}{r['time_s'] * 1e3:>11.2f}{r['tflops']:>9.3f}{r['ratio_to_sdpa']:>8.2f}"
                f"{fmt(mib, '.1f'):>10}{fmt(r['max_abs_err'], '.1e'):>10}"
            )
        print(
            f"fitted exponents p (time ~ T^p, memory ~ T^p)\n{'method':<24}{'time':>7}{'memory':>8}"
        )
        for name, f in run_["fits"].items():
            time_p, mem_p = fmt(f["time_exponent"], ".2f"), fmt(f["memory_exponent"], ".2f")
            print(f"{name:<24}{time_p:>7}{mem_p:>8}")
        for name, kernels in run_["kernels"].items():
            print(f"kernels {name:<24} {kernels}")
        reached = goal(run_)
        if reached:
            print(f"triton_flash_attention at T={reached[0]}: {reached[1]:.0%} of SDPA's TFLOP/s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    res = benchmark(args, argv)
    print_report(res)
    paths = [args.json] if args.json else []
    if args.save:
        paths.append(RESULTS / f"{slug(res['card'])}.json")
    for path in paths:
        with open(path, "w") as out:
            json.dump(res, out, indent=1, allow_nan=False)
            out.write("\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
