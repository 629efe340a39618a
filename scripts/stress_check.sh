#!/usr/bin/env bash
# Run a test command several times while busy processes load the CPU, and report each run.
#
# The course's timing proofs must hold on a loaded machine (one thread per timing, ratios at the
# largest sizes with wide margins). This is the check: it starts BUSY processes that spin
# (`python3 -c "while True: pass"`), runs the command RUNS times, stops the busy processes
# whatever happens (a failed run, Ctrl-C, a kill), and prints one line per run and a summary.
# It exits 0 only if every run passed.
#
#   scripts/stress_check.sh                          # `make test` three times, two busy processes
#   scripts/stress_check.sh -n 2 -- .venv/bin/pytest -q --nbval --nbval-current-env \
#       --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks/09_cost_of_attention.ipynb
#   make stress                                      # the same, from the Makefile
#   make stress STRESS_RUNS=1 STRESS_CMD="make test"
set -u

RUNS=3
BUSY=2
PYTHON=${PYTHON:-python3}
LOG_DIR=${STRESS_LOG_DIR:-}

usage() {
  echo "usage: $0 [-n RUNS] [-b BUSY] [-l LOG_DIR] [--] [command ...]   (default command: make test)"
}

while [ $# -gt 0 ]; do
  case "$1" in
    -n) RUNS=$2; shift 2 ;;
    -b) BUSY=$2; shift 2 ;;
    -l) LOG_DIR=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) usage >&2; exit 2 ;;
    *) break ;;
  esac
done
case "$RUNS$BUSY" in *[!0-9]*) usage >&2; exit 2 ;; esac
[ "$RUNS" -ge 1 ] || { echo "error: RUNS must be >= 1" >&2; exit 2; }
if [ $# -eq 0 ]; then set -- make test; fi

BUSY_PIDS=()
CHILD=
stop_busy() {
  if [ -n "$CHILD" ]; then  # interrupted during a run: stop the command's whole process group
    kill -TERM -- "-$CHILD" 2>/dev/null
    wait "$CHILD" 2>/dev/null
    CHILD=
  fi
  if [ ${#BUSY_PIDS[@]} -gt 0 ]; then
    kill "${BUSY_PIDS[@]}" 2>/dev/null
    wait "${BUSY_PIDS[@]}" 2>/dev/null
    echo "stress check: stopped the busy processes ${BUSY_PIDS[*]}"
    BUSY_PIDS=()
  fi
}
trap stop_busy EXIT
trap 'stop_busy; exit 130' INT
trap 'stop_busy; exit 143' TERM

for ((i = 0; i < BUSY; i++)); do
  "$PYTHON" -c "while True: pass" &
  BUSY_PIDS+=("$!")
done
echo "stress check: $BUSY busy processes (${BUSY_PIDS[*]}) on $(nproc) CPU cores; running $RUNS times: $*"
[ -n "$LOG_DIR" ] && mkdir -p "$LOG_DIR"

passed=0
summary=()
# Between the runs the script runs builtins only (no `$(date)`, no `seq`): bash defers a trap
# while a foreground child runs, and a SIGINT that arrives then is taken for the child's.
for ((run = 1; run <= RUNS; run++)); do
  start=$SECONDS
  # In its own session (setsid), so that an interrupted check can stop all of it; waited for
  # in the background, so that Ctrl-C or a kill reaches the trap at once.
  if [ -n "$LOG_DIR" ]; then
    setsid "$@" >"$LOG_DIR/run-$run.log" 2>&1 &
  else
    setsid "$@" &
  fi
  CHILD=$!
  wait "$CHILD"
  status=$?
  CHILD=
  seconds=$((SECONDS - start))
  if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
    line="run $run of $RUNS: passed in ${seconds} s"
  else
    line="run $run of $RUNS: FAILED (exit status $status) after ${seconds} s"
  fi
  [ -n "$LOG_DIR" ] && line="$line (log: $LOG_DIR/run-$run.log)"
  echo "stress check: $line"
  summary+=("$line")
done

stop_busy
echo "stress check: $passed of $RUNS runs passed with $BUSY busy processes: $*"
for line in "${summary[@]}"; do echo "  $line"; done
[ "$passed" -eq "$RUNS" ]
