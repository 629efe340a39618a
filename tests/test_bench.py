"""benchmarks/attention_bench.py: the --quick run on the CPU prints a table and writes JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "attention_bench.py"
METHODS = {"naive", "attention.sdpa", "flash_attention", "torch.sdpa"}


def load_bench():
    spec = importlib.util.spec_from_file_location("attention_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_cpu_run_prints_a_table_and_writes_valid_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--quick", "--device", "cpu", "--lengths", "32", "96", "--heads", "2", "--json"]
    assert load_bench().main([*argv, str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fitted exponents" in printed and "flash_attention" in printed
    res = json.loads(out.read_text())  # strict JSON: no NaN
    assert (res["device"], res["dtype"], res["heads"]) == ("cpu", "float32", 2)
    assert res["min_run_time"] == 0.05
    rows = res["results"]
    assert {(r["method"], r["T"]) for r in rows} == {(m, t) for m in METHODS for t in (32, 96)}
    for r in rows:
        assert r["skipped"] is None
        assert r["time_s"] > 0 and r["tflops"] > 0 and r["peak_bytes"] >= 0
        assert r["max_abs_err"] < 1e-5, r
    assert all(r["ratio_to_sdpa"] == 1.0 for r in rows if r["method"] == "torch.sdpa")
    assert set(res["fits"]) == METHODS
    assert all(isinstance(f["time_exponent"], float) for f in res["fits"].values())


def test_defaults_follow_the_device():
    bench = load_bench()
    cpu = bench.parse_args(["--device", "cpu"])
    assert (cpu.dtype, cpu.lengths[-1], cpu.block_size) == (bench.torch.float32, 8192, None)
    assert bench.parse_args(["--device", "cpu", "--quick"]).lengths == [128, 256, 512]


@pytest.mark.parametrize(
    "argv",
    [["--lengths", "0"], ["--heads", "0"], ["--dtype", "int8"], ["--block-size", "0", "4"]],
)
def test_bad_arguments_exit_with_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as info:
        load_bench().parse_args(["--device", "cpu", *argv])
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err
