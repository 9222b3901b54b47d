#!/usr/bin/env bash
# Runs tests/reliability.rs and writes the figures RELIABILITY.md quotes (fault counts, attempts,
# kills, requests asked again, peak memory, the size a full disk stopped at) to a results file,
# one line per figure named by the test that measured it, under a header saying when, where and
# on which commit. Commit the file with the RELIABILITY.md figures it produced.
#
#   scripts/reliability-figures.sh              # writes tests/results/reliability-<date>.txt
#   OUT=/tmp/figures.txt scripts/reliability-figures.sh
#
# A test that needs a missing prerequisite (root with mount rights, GNU time, /dev/full) says
# "skipped" and gives no figure: the file lists which tests gave none.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-tests/results/reliability-$(date -u +%Y-%m-%d).txt}
mkdir -p "$(dirname "$out")"
log=$(mktemp)
summary=$(mktemp)
trap 'rm -f "$log" "$summary"' EXIT
status=0
cargo test --test reliability -- --nocapture >"$summary" 2>"$log" || status=$?
{
    echo "# tests/reliability.rs figures, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src tests || echo ' (with local changes)')"
    echo "# $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# cargo test exit status $status; $(grep -m1 '^test result' "$summary" || echo 'no test result line')"
    # A failed test's figures are not to be quoted: name the failures.
    grep -E '^test .* FAILED$' "$summary" | sed 's/^/# /' || true
    grep '^figure: ' "$log" | sed 's/^figure: //' | sort
    skipped=$(grep '^skipped: ' "$log" | sed 's/^skipped: //' | sort -u || true)
    if [[ -n $skipped ]]; then
        echo "# skipped (no figure):"
        echo "$skipped" | sed 's/^/#   /'
    fi
} >"$out"
cat "$out"
echo "written to $out" >&2
exit "$status"
