#!/usr/bin/env bash
# The kill -9 crash test (tests/bot/test_crash.py), N runs (default 20) in each order of its
# backends, all its cases in one pytest process each time as in the whole suite: the SQLite
# cases then the PostgreSQL ones, and the PostgreSQL ones then the SQLite ones. ORDER (default
# both) picks one: sqlite-first or postgresql-first. Prints each run's outcome and time; a
# failed run's output is kept in $CRASH_LOOP_LOGS (default: a new temporary directory), and the
# load at the time is printed beside it. Exits non-zero if any run failed.
#
#   tests/crash_loop.sh [N [ORDER]]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
case ${2:-both} in
  both) orders=(sqlite-first postgresql-first) ;;
  sqlite-first | postgresql-first) orders=("$2") ;;
  *) echo "ORDER is both, sqlite-first or postgresql-first" >&2; exit 2 ;;
esac
logs=${CRASH_LOOP_LOGS:-$(mktemp -d -t crash-loop.XXXXXX)}
mkdir -p "$logs"
test=tests/bot/test_crash.py::test_kill_9_at_every_stage_loses_nothing_and_runs_nothing_twice
# -n 0 everywhere: one process, in the order given (the suite's addopts spread tests over workers).
pytest=(.venv/bin/pytest -n 0 -p no:cacheprovider)
sqlite=()
postgresql=()
while read -r id; do
  case $id in
    "$test[sqlite"*) sqlite+=("$id") ;;
    "$test[postgresql"*) postgresql+=("$id") ;;
  esac
done < <("${pytest[@]}" -q --collect-only "$test")
if [ ${#sqlite[@]} -eq 0 ] || [ ${#postgresql[@]} -eq 0 ]; then
  echo "the crash test's SQLite or PostgreSQL cases were not collected" >&2
  exit 2
fi
failed=0
for order in "${orders[@]}"; do
  if [ "$order" = sqlite-first ]; then ids=("${sqlite[@]}" "${postgresql[@]}"); else ids=("${postgresql[@]}" "${sqlite[@]}"); fi
  passes=0
  fails=0
  for i in $(seq "$runs"); do
    log="$logs/$order-$i.log"
    started=$SECONDS
    if "${pytest[@]}" -q -s "${ids[@]}" >"$log" 2>&1 && grep -q "^${#ids[@]} passed" "$log"; then
      passes=$((passes + 1))
      echo "$order: run $i passed in $((SECONDS - started)) s"
      rm "$log"
    else
      fails=$((fails + 1))
      echo "$order: run $i FAILED in $((SECONDS - started)) s, output in $log" \
        "(load $(cut -d' ' -f1-3 /proc/loadavg))"
    fi
  done
  echo "$order (${ids[*]#"$test"}): $passes passed, $fails failed"
  failed=$((failed + fails))
done
[ "$failed" -eq 0 ]
