"""scripts/stress_check.sh (`make stress`): runs a command under load and always stops the load."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "stress_check.sh"
# Without STRESS_LOG_DIR: under `make stress STRESS_LOG_DIR=...` these runs would write their
# logs over the real runs' logs in that folder, and print "(log: ...)" on every line.
ENV = {**{k: v for k, v in os.environ.items() if k != "STRESS_LOG_DIR"}, "PYTHON": sys.executable}


def _busy_pids(output: str) -> list[int]:
    match = re.search(r"busy processes \(([\d ]+)\)", output)
    assert match, output
    return [int(pid) for pid in match.group(1).split()]


def _gone(pid: int) -> bool:
    """True once the process no longer exists (the script waits for it, so no zombie is left)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=ENV, check=False
    )


def test_stress_check_reports_every_run_and_passes_when_all_pass():
    result = _run("-n", "2", "-b", "2", "--", "true")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "run 1 of 2: passed" in result.stdout and "run 2 of 2: passed" in result.stdout
    assert "2 of 2 runs passed with 2 busy processes: true" in result.stdout
    pids = _busy_pids(result.stdout)
    assert len(pids) == 2 and all(_gone(pid) for pid in pids)


def test_stress_check_fails_when_one_run_fails_and_still_stops_the_load():
    result = _run("-n", "2", "-b", "1", "--", "sh", "-c", "test -e nothing-here")
    assert result.returncode == 1
    assert "run 1 of 2: FAILED (exit status 1)" in result.stdout
    assert "0 of 2 runs passed" in result.stdout
    assert all(_gone(pid) for pid in _busy_pids(result.stdout))


def _default_signals() -> None:
    """Give the script default SIGINT and SIGTERM, as a terminal does. Under `make stress` (or
    any background job) pytest runs with SIGINT ignored, and bash cannot trap a signal that was
    ignored when it started: the script would then run on, as it should in the background."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stress_check_interrupted_stops_the_load_and_the_command(sig, tmp_path):
    marker = tmp_path / "still-running"
    command = f"sleep 20; touch {marker}"
    proc = subprocess.Popen(
        [str(SCRIPT), "-n", "1", "-b", "2", "--", "sh", "-c", command],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=_default_signals,
    )
    first = proc.stdout.readline()  # the busy processes have started
    time.sleep(0.5)
    proc.send_signal(sig)
    rest = proc.communicate(timeout=30)[0]
    assert proc.returncode != 0
    assert "stopped the busy processes" in rest
    assert all(_gone(pid) for pid in _busy_pids(first))
    time.sleep(0.5)
    assert not marker.exists()
    result = subprocess.run(["pgrep", "-f", command], capture_output=True, text=True, check=False)
    assert result.stdout.strip() == "", f"the command still runs: {result.stdout}"


def test_make_stress_runs_the_script():
    makefile = (SCRIPT.parents[1] / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^stress: .*##", makefile, re.M)
    assert "scripts/stress_check.sh -n $(STRESS_RUNS)" in makefile
