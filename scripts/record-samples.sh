#!/usr/bin/env bash
# Re-records the responses that ship with the sample projects.
#
# For each sample: deletes its .gepa/cache and .gepa/runs, runs a complete headless optimization
# against the local OpenAI-compatible server (every model call lands in .gepa/cache/), saves the
# final {"event":"finished",...} line as .gepa/recorded-run.json, then replays the run with
# --offline and checks it ends with the same best val score.
#
# Usage:  scripts/record-samples.sh [sample ...]      (default: all four, one after another)
#         KEEP_CACHE=1 scripts/record-samples.sh NAME   (keep the replies already in .gepa/cache, so an
#                                                        interrupted recording starts where it stopped;
#                                                        only with the same models and settings)
#
# Before running it, build and start the server the samples were recorded on:
#   cargo build --release
#   DETERMINISTIC=1 ../shared/local-llm/serve.sh --background      # MODEL=... to change model
# DETERMINISTIC=1 makes temperature-0 replies repeatable (one slot, no prompt cache).
# Afterwards update the "Recorded" line of each sample's README and commit .gepa/cache/.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${GEPA_TUI:-target/release/gepa-tui}
BASE_URL=${BASE_URL:-http://127.0.0.1:8080/v1}
ALL=(support-triage math-word-problems multi-hop-qa privacy-rewrite)
if [ "$#" -gt 0 ]; then SAMPLES=("$@"); else SAMPLES=("${ALL[@]}"); fi

if [ ! -x "$BIN" ]; then
    echo "error: $BIN not found; run 'cargo build --release' first" >&2
    exit 2
fi
if ! models=$(curl -sf --max-time 5 "$BASE_URL/models"); then
    echo "error: no server answers at $BASE_URL; start one with" >&2
    echo "  DETERMINISTIC=1 ../shared/local-llm/serve.sh --background" >&2
    exit 2
fi
served=$(printf '%s' "$models" | python3 -c 'import json,sys; print(",".join(m["id"] for m in json.load(sys.stdin)["data"]))')
echo "server at $BASE_URL serves: $served"

status=0
for s in "${SAMPLES[@]}"; do
    dir=sample-projects/$s
    if [ ! -f "$dir/gepa.toml" ]; then
        echo "error: $dir/gepa.toml not found" >&2
        status=1
        continue
    fi
    echo "== $s: recording (started $(date -u +%FT%TZ))"
    if [ -n "${KEEP_CACHE:-}" ]; then
        rm -rf "$dir/.gepa/runs"
    else
        rm -rf "$dir/.gepa/cache" "$dir/.gepa/runs"
    fi
    "$BIN" check "$dir"
    log=$(mktemp)
    start=$(date +%s)
    if ! "$BIN" run --headless --json "$dir" >"$log"; then
        echo "error: the recording run of $s failed (events in $log)" >&2
        status=1
        continue
    fi
    end=$(date +%s)
    tail -n 1 "$log" >"$dir/.gepa/recorded-run.json"
    rm -f "$log"
    echo "   recorded in $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s: $(cat "$dir/.gepa/recorded-run.json")"
    echo "   cache: $(du -sh "$dir/.gepa/cache" | cut -f1)"

    echo "== $s: replaying offline"
    replay=$("$BIN" run --headless --offline --json "$dir" | tail -n 1)
    if python3 - "$dir/.gepa/recorded-run.json" "$replay" <<'PY'
import json, sys
rec = json.load(open(sys.argv[1]))
rep = json.loads(sys.argv[2])
keys = ("best_val_score", "test_score", "candidates", "metric_calls")
diff = [k for k in keys if rec.get(k) != rep.get(k)]
print("   replay:", {k: rep.get(k) for k in keys})
sys.exit(1 if diff else 0)
PY
    then
        echo "   replay matches the recording"
    else
        echo "error: the offline replay of $s differs from the recording" >&2
        status=1
    fi
done
exit $status
