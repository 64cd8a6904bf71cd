#!/usr/bin/env bash
# The kill -9 crash test (tests/bot/test_crash.py), N runs (default 20) in each order of its
# two backends, both in one pytest process each time as in the whole suite: SQLite then
# PostgreSQL, and PostgreSQL then SQLite. ORDER (default both) picks one: sqlite-first or
# postgresql-first. Prints the passes and failures per order; a failed run's output is kept in
# $CRASH_LOOP_LOGS (default: a new temporary directory). Exits non-zero if any run failed.
#
#   tests/crash_loop.sh [N [ORDER]]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
case ${2:-both} in
  both) orders=("sqlite postgresql" "postgresql sqlite") ;;
  sqlite-first) orders=("sqlite postgresql") ;;
  postgresql-first) orders=("postgresql sqlite") ;;
  *) echo "ORDER is both, sqlite-first or postgresql-first" >&2; exit 2 ;;
esac
logs=${CRASH_LOOP_LOGS:-$(mktemp -d -t crash-loop.XXXXXX)}
mkdir -p "$logs"
test=tests/bot/test_crash.py::test_kill_9_at_every_stage_loses_nothing_and_runs_nothing_twice
failed=0
for order in "${orders[@]}"; do
  ids=()
  for backend in $order; do ids+=("$test[$backend]"); done
  passes=0
  fails=0
  for i in $(seq "$runs"); do
    log="$logs/${order// /-then-}-$i.log"
    started=$SECONDS
    # -n 0: one process, in the order given (the suite's addopts spread tests over workers).
    if .venv/bin/pytest -q -s -n 0 -p no:cacheprovider "${ids[@]}" >"$log" 2>&1 \
      && grep -q "2 passed" "$log"; then
      passes=$((passes + 1))
      echo "${order// / then }: run $i passed in $((SECONDS - started)) s"
      rm "$log"
    else
      fails=$((fails + 1))
      echo "${order// / then }: run $i FAILED in $((SECONDS - started)) s, output in $log" \
        "(load $(cut -d' ' -f1-3 /proc/loadavg))"
    fi
  done
  echo "${order// / then }: $passes passed, $fails failed"
  failed=$((failed + fails))
done
[ "$failed" -eq 0 ]
