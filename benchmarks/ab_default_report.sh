#!/usr/bin/env bash
# The default report end to end, two commits alternating (a benchmark, not a test):
#
#     bash benchmarks/ab_default_report.sh OLD_REV NEW_REV [PAIRS]
#
# Each commit's reportgen/ is extracted with `git archive` and run from the same venv
# (PYTHONPATH=<its tree> python -m reportgen run) in a fresh temporary folder, OLD then NEW, PAIRS times
# (default 2): this machine's speed drifts by tens of percent from minute to minute, so only alternating
# runs compare. Prints each run's wall time, the load average before and after, and the final accuracies.
set -euo pipefail
old=${1:?old revision}; new=${2:?new revision}; pairs=${3:-2}
root=$(git rev-parse --show-toplevel)
python=$root/.venv/bin/python
trees=$(mktemp -d)
trap 'rm -rf "$trees"' EXIT
for side in old new; do
  mkdir "$trees/$side"
  git -C "$root" archive "${!side}" reportgen | tar -x -C "$trees/$side"
done
for pair in $(seq 1 "$pairs"); do
  for side in old new; do
    folder=$(mktemp -d)
    before=$(cut -d' ' -f1-3 /proc/loadavg)
    start=$(date +%s.%N)
    (cd "$folder" && PYTHONPATH="$trees/$side" "$python" -m reportgen run >"$folder/out" 2>&1) || echo "$side failed"
    seconds=$(echo "$(date +%s.%N) - $start" | bc)
    accuracies=$(grep -ho '"final_test_acc": [0-9.]*' "$folder"/output/*/summary.json | cut -d' ' -f2 | tr '\n' ' ')
    printf '%s (%s) run %d: %.1f s, load %s -> %s, final test accuracy %s\n' \
      "$side" "${!side}" "$pair" "$seconds" "$before" "$(cut -d' ' -f1-3 /proc/loadavg)" "$accuracies"
    rm -rf "$folder"
  done
done
