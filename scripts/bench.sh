#!/usr/bin/env bash
# Runs one of the cargo benches (benches/<name>.rs) and writes what it printed to a results file
# under a header saying when, where, on which commit and with which build, so the table in
# BENCHMARKS.md is the one a run produced. Commit the file with the table.
#
#   scripts/bench.sh render            # release profile, as `cargo bench --bench render`
#   scripts/bench.sh attach            # dev profile (the engine as `cargo test` builds it)
#   scripts/bench.sh memory            # dev profile; needs GNU time (scripts/bench-memory.sh)
#   PROFILE=release scripts/bench.sh memory
#   OUT=/tmp/x.txt scripts/bench.sh attach
#
# Writes benches/results/<name>-<date>.txt (a second run the same day replaces it).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: scripts/bench.sh render|attach|memory}
[[ -f benches/$name.rs ]] || { echo "no benches/$name.rs" >&2; exit 2; }
case $name in
    render) profile=${PROFILE:-bench} ;;
    *) profile=${PROFILE:-dev} ;;
esac
out=${OUT:-benches/results/$name-$(date -u +%Y-%m-%d).txt}
mkdir -p "$(dirname "$out")"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo bench --profile "$profile" --bench "$name" >"$log" 2>&1 || status=$?
{
    echo "# cargo bench --profile $profile --bench $name, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src benches || echo ' (with local changes)')"
    echo "# $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/^Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg), $(rustc --version)"
    echo "# exit status $status"
    # What the bench printed, without cargo's own build lines.
    grep -vE '^\s*(Compiling|Finished|Running|Blocking|Downloaded|Downloading|Locking|Updating|Adding|warning: unused)' "$log"
} >"$out"
cat "$out"
echo "written to $out" >&2
exit "$status"
