"""benchmarks/: the --quick CPU run prints a table and writes JSON; the H100 evidence file is
exactly what its logs say."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
METHODS = {"naive", "attention.sdpa", "flash_attention", "torch.sdpa"}
DOC_KEYS = {"card", "date", "torch", "triton", "source", "command", "device", "dtype", "runs"}


def load_bench(name="attention_bench"):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "forward+backward"])
def test_quick_cpu_run_prints_a_table_and_writes_valid_json(tmp_path, capsys, backward):
    out = tmp_path / "bench.json"
    argv = ["--quick", "--device", "cpu", "--lengths", "32", "96", "--heads", "2", "--threads"]
    argv += ["1", "--head-dim"]
    argv += ["8", "16", "--backward", "--no-memory"] if backward else ["8"]  # few forks
    argv += ["--json", str(out)]
    assert load_bench().main(argv) == 0
    printed = capsys.readouterr().out
    assert "fitted exponents" in printed and "flash_attention" in printed
    res = json.loads(out.read_text())  # strict JSON: no NaN
    assert DOC_KEYS <= set(res)
    assert (res["device"], res["dtype"], res["min_run_time"]) == ("cpu", "float32", 0.05)
    assert res["threads"] == 1
    assert res["command"] == "python benchmarks/attention_bench.py " + " ".join(argv)
    dims = [8, 16] if backward else [8]
    assert [(r["head_dim"], r["heads"]) for r in res["runs"]] == [(d, 2) for d in dims]
    for run in res["runs"]:
        assert run["pass"] == ("forward+backward" if backward else "forward")
        assert run["sdpa_backend"]["is_causal=False"] in ("MATH", "FLASH_ATTENTION")
        rows = run["results"]
        assert {(r["method"], r["T"]) for r in rows} == {(m, t) for m in METHODS for t in (32, 96)}
        for r in rows:
            assert r["skipped"] is None
            assert r["time_s"] > 0 and r["tflops"] > 0
            assert (r["peak_bytes"] is None) if backward else (r["peak_bytes"] >= 0)
            assert r["max_abs_err"] < 1e-5, r
        assert all(r["ratio_to_sdpa"] == 1.0 for r in rows if r["method"] == "torch.sdpa")
        assert set(run["fits"]) == METHODS


def test_goal_reads_triton_against_sdpa_at_16384_or_the_largest_length():
    bench = load_bench()
    rows = [
        {"method": m, "T": t, "tflops": f}
        for m, t, f in [("torch.sdpa", 8192, 400.0), ("triton_flash_attention", 8192, 100.0)]
    ]
    assert bench.goal({"results": rows}) == (8192, 0.25)
    rows += [
        {"method": "torch.sdpa", "T": 16384, "tflops": 480.0},
        {"method": "triton_flash_attention", "T": 16384, "tflops": 240.0},
        {"method": "torch.sdpa", "T": 32768, "tflops": 500.0},
    ]
    assert bench.goal({"results": rows}) == (16384, 0.5)
    assert bench.goal({"results": rows[:1]}) is None
    assert bench.slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"


def test_the_h100_evidence_file_is_the_conversion_of_its_logs():
    importer = load_bench("import_measurements")
    committed = json.loads(importer.OUT.read_text())
    assert committed == importer.convert()
    assert committed["card"] == "NVIDIA H100 80GB HBM3" and committed["torch"] == "2.11.0+cu130"
    assert "not a run of benchmarks/attention_bench.py" in committed["source"]
    by_dim = {r["head_dim"]: r for r in committed["runs"]}
    sdpa = {
        (d, r["T"]): r["tflops"]
        for d in by_dim
        for r in by_dim[d]["results"]
        if r["method"] == "sdpa"
    }
    assert (
        round(sdpa[64, 32768]) == 484 and round(sdpa[128, 16384]) == 685
    )  # TOOLCHAIN.md's figures
    assert committed["sdpa_backend"]["is_causal=False"] == "CUDNN_ATTENTION"


def test_defaults_follow_the_device():
    bench = load_bench()
    cpu = bench.parse_args(["--device", "cpu"])
    assert (cpu.dtype, cpu.lengths[-1], cpu.block_size) == (bench.torch.float32, 8192, None)
    assert bench.parse_args(["--device", "cpu", "--quick"]).lengths == [128, 256, 512]


@pytest.mark.parametrize(
    "argv",
    [
        ["--lengths", "0"],
        ["--heads", "0"],
        ["--dtype", "int8"],
        ["--block-size", "0", "4"],
        ["--threads", "0"],
        ["--head-dim", "0"],
    ],
)
def test_bad_arguments_exit_with_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as info:
        load_bench().parse_args(["--device", "cpu", *argv])
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err
