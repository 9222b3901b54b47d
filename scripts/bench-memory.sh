#!/usr/bin/env bash
# Peak memory (RSS) of gepa-tui on big inputs: loading a 10,000-example val set (check, eval, a run)
# and folding a synthetic 2,000-candidate run (runs, export, resume). Prints the markdown table that
# BENCHMARKS.md records and writes it to benches/results/memory-<date>.txt (scripts/bench.sh).
# Needs GNU time at /usr/bin/time.
#
#   scripts/bench-memory.sh                  # debug build, as `cargo test` builds it (benches/memory.rs)
#   PROFILE=release scripts/bench-memory.sh  # optimized build (slower to compile, faster to run)
#   GEPA_BENCH_DIR=/tmp/bench scripts/bench-memory.sh   # keep the generated projects
#   GEPA_MEMORY_BASELINE=/tmp/old/gepa-tui scripts/bench-memory.sh   # each row also with an older
#                                            # build, side by side (e.g. `git worktree add` + cargo build)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x /usr/bin/time ]] || { echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }
exec scripts/bench.sh memory
