"""Convert the course authors' H100 logs into the results format of ``attention_bench.py``.

The logs in ``benchmarks/results/measurements/`` were taken on 2026-11-26 on an NVIDIA H100
80GB HBM3 with torch 2.11.0+cu130 by the authors' own forward-pass benchmark (not this
repository's ``attention_bench.py``; the logs do not record its command line). Until the
course's benchmark runs on a GPU, chapter 11 cites them, rendered from the JSON this script
writes, which says where every figure came from:

    python benchmarks/import_measurements.py        # rewrites benchmarks/results/<name>.json
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
LOGS = RESULTS / "measurements"
OUT = RESULTS / "nvidia-h100-80gb-hbm3-measurements-2026-11-26.json"
METHODS = {
    "naive": "materialised: softmax(Q K^T / sqrt(Dh)) V, the (B, H, L, L) matrix in memory",
    "naive_causal": "materialised, causal",
    "sdpa": "torch F.scaled_dot_product_attention, default backend",
    "sdpa_causal": "torch SDPA, is_causal=True",
    "sdpa_math": "torch SDPA forced to the MATH backend",
    "mha_fast": "nn.MultiheadAttention, fast path",
    "mha_reg": "nn.MultiheadAttention, regular path",
    "mha_reg_w": "nn.MultiheadAttention, regular path, need_weights=True",
    "chunked": "online-softmax attention tiled over queries and keys in plain PyTorch (a loop)",
    "chunked_causal": "the same tiling, causal",
    "matmul": "one 8192 x 8192 bf16 matmul (the ceiling), for reference",
}


def _table(text: str, title: str) -> dict[str, dict[int, float | None]]:
    """One summary table of a log: {column: {L: value}}; '-' becomes None, 'x' is dropped."""
    block = text.split(f"-- {title}", 1)[1].split("\n--", 1)[0].splitlines()
    start = next(i for i, line in enumerate(block) if line.split()[:1] == ["L"])
    columns = block[start].split()[1:]
    table: dict[str, dict[int, float | None]] = {c: {} for c in columns}
    for line in block[start + 1 :]:
        cells = line.split()
        for column, cell in zip(columns, cells[1:], strict=True):
            table[column][int(cells[0])] = None if cell == "-" else float(cell.rstrip("x%"))
    return table


def parse_log(text: str) -> dict:
    """The run of one log: its configuration, kernels and one row per (method, L)."""
    header = re.search(
        r"== attention forward, cuda \((?P<card>[^)]+)\), (?P<dtype>\w+), B=(?P<B>\d+) "
        r"H=(?P<H>\d+) d=(?P<d>\d+), threads=(?P<threads>\d+), .* torch (?P<torch>\S+) ==",
        text,
    )
    backend = re.search(r"\[kernels\] SDPA backend choice: (\{.*\})", text)
    kernels = dict(re.findall(r"\[kernels\]   (\w+) +(.*)", text))
    ceiling = re.search(r"-- matmul ceiling 8192\^3 \(best of runs\): ([\d.]+) GFLOP/s", text)
    times = _table(text, "median time per forward [ms]")
    gflops = _table(text, "GFLOP/s")
    ratios = _table(text, "paired median ratio vs SDPA")
    memory = _table(text, "peak memory growth [MiB]")
    rows = []
    for method in (m for m in times if m != "bg-load"):
        for L, ms in times[method].items():
            if ms is None:
                continue
            mib = memory.get(method, {}).get(L)
            rows.append(
                {
                    "method": method,
                    "T": L,
                    "time_s": round(ms / 1e3, 8),
                    "tflops": round(gflops[method][L] / 1e3, 4),
                    "ratio_to_sdpa": 1.0 if method == "sdpa" else ratios[method].get(L),
                    "peak_bytes": None if mib is None else round(mib * 2**20),
                }
            )
    return {
        "card": header["card"],
        "torch": header["torch"],
        "dtype": header["dtype"].replace("bf16", "bfloat16"),
        "threads": int(header["threads"]),
        "sdpa_backend": ast.literal_eval(backend[1]),
        "matmul_tflops": round(float(ceiling[1]) / 1e3, 4),
        "run": {
            "matmul_tflops": round(float(ceiling[1]) / 1e3, 4),  # this run's bf16 matmul ceiling
            "batch": int(header["B"]),
            "heads": int(header["H"]),
            "head_dim": int(header["d"]),
            "kernels": {m: k.strip() for m, k in kernels.items() if k.strip()},
            "results": rows,
        },
    }


def convert(log_dir: Path = LOGS) -> dict:
    """The results document of every ``*.log`` in ``log_dir`` (one run per head width)."""
    parsed = [parse_log(p.read_text()) for p in sorted(log_dir.glob("*.log"))]
    first = parsed[0]
    for p in parsed[1:]:
        if (p["card"], p["torch"], p["dtype"]) != (first["card"], first["torch"], first["dtype"]):
            raise ValueError("the logs come from different cards, torch versions or dtypes")
    names = ", ".join(p.name for p in sorted(log_dir.glob("*.log")))
    return {
        "card": first["card"],
        "date": "2026-11-26",
        "torch": first["torch"],
        "triton": None,
        "source": (
            "the course authors' H100 measurements (../shared/measurements, "
            f"benchmarks/results/measurements/: {names}), "
            "converted by benchmarks/import_measurements.py; not a run of "
            "benchmarks/attention_bench.py"
        ),
        "command": "not recorded in the logs (the authors' forward-pass benchmark)",
        "device": "cuda",
        "dtype": first["dtype"],
        "threads": first["threads"],
        "matmul_tflops": max(p["matmul_tflops"] for p in parsed),
        "sdpa_backend": first["sdpa_backend"],
        "flops": "4 B H L^2 Dh per non-causal forward (half for causal)",
        "methods": METHODS,
        "runs": sorted((p["run"] for p in parsed), key=lambda r: r["head_dim"]),
    }


def main() -> int:
    OUT.write_text(json.dumps(convert(), indent=1, allow_nan=False) + "\n")
    print(f"wrote {OUT.relative_to(RESULTS.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
