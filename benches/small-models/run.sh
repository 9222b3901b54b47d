#!/usr/bin/env bash
# Issue 31's live table: sample projects on a small local model (llama-server), one run at a time.
#
#   benches/small-models/run.sh --bin PATH [--port 8080] [--wall SECS] [--budget 100] RUN...
#
#   RUN is BUILD:TEMPLATE:PROJECT:SEED, e.g. after:compact:support-triage:0
#     BUILD     after  = the defaults ([reflection] has only the template)
#               before = the behaviour before issue 31's change, on the same binary:
#                        adapt = false (one way of asking, no note re-ask of an unchanged answer)
#                        and retry_max_tokens = the reflection model's max_tokens (no more room)
#               cutoff = before, with cut-off answers used as they stood (gepa's way:
#                        use_cut_off_answers = true), the comparison issue 31 asks best val to match
#     TEMPLATE  gepa | compact
#     PROJECT   a folder of sample-projects/
#   --bin       the gepa-tui binary (build it once: cargo build --release)
#   --port      where the local OpenAI-compatible server listens (its base_url replaces the sample's)
#   --wall      [optimizer] max_wall_secs, a cap on each run (default: none)
#   --budget    --max-metric-calls (default 100)
#   --out DIR   where run folders go (default /tmp/gepa-small-models)
#
# Each run copies the sample without its .gepa/ (no recorded replies: everything is asked live),
# replaces its [reflection] section, keeps the rest of its gepa.toml, runs
#   gepa-tui run --headless --json --seed SEED --max-metric-calls BUDGET DIR
# and appends the run's row (summarize.py row) to results/rows.jsonl; results/table.md is then
# regenerated from all rows.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="" port=8080 wall="" budget=100 out=/tmp/gepa-small-models
runs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --wall) wall=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) runs+=("$1"); shift ;;
  esac
done
[ -x "$bin" ] || { echo "--bin PATH: a gepa-tui binary is needed" >&2; exit 2; }
curl -fsS -m 5 "http://127.0.0.1:$port/v1/models" >/dev/null \
  || { echo "nothing answers at http://127.0.0.1:$port/v1 (start llama-server first)" >&2; exit 2; }
mkdir -p "$out" "$here/results"
rows="$here/results/rows.jsonl"

for spec in "${runs[@]}"; do
  IFS=: read -r build template project seed <<<"$spec"
  case "$build" in before|after|cutoff) ;; *) echo "$spec: BUILD is before, after or cutoff" >&2; exit 2 ;; esac
  case "$template" in gepa|compact) ;; *) echo "$spec: TEMPLATE is gepa or compact" >&2; exit 2 ;; esac
  [ -f "$root/sample-projects/$project/gepa.toml" ] || { echo "$spec: no sample-projects/$project" >&2; exit 2; }
  name="$build-$template-$project-s$seed"
  dir="$out/$name"
  rm -rf "$dir"; mkdir -p "$dir"
  (cd "$root/sample-projects/$project" && tar --exclude=.gepa -cf - .) | (cd "$dir" && tar -xf -)
  python3 - "$dir/gepa.toml" "$build" "$template" "$port" "$wall" <<'PY'
import re, sys
path, build, template, port, wall = sys.argv[1:]
text = open(path).read()
text = text.replace("http://127.0.0.1:8080/v1", f"http://127.0.0.1:{port}/v1")
sections = re.split(r"(?m)^(?=\[)", text)
refl_max = None
for s in sections:
    if s.startswith("[models.reflection]"):
        m = re.search(r"(?m)^max_tokens\s*=\s*(\d+)", s)
        refl_max = int(m.group(1)) if m else None
new = f'[reflection]\ntemplate = "{template}"\n'
if build in ("before", "cutoff"):
    new += "adapt = false\n"
    if refl_max is not None:
        new += f"retry_max_tokens = {refl_max}\n"
if build == "cutoff":
    new += "use_cut_off_answers = true\n"
out = []
for s in sections:
    if s.startswith("[reflection]"):
        s = new + "\n"
    elif s.startswith("[optimizer]") and wall:
        s = s.rstrip("\n") + f"\nmax_wall_secs = {wall}\n\n"
    out.append(s)
if not any(s.startswith("[reflection]") for s in sections):
    out.append(new)
open(path, "w").write("".join(out))
PY
  echo "[$(date -u +%H:%M:%S)] $name: starting" >&2
  rc=0
  "$bin" run --headless --json --seed "$seed" --max-metric-calls "$budget" "$dir" \
    >"$dir/run.stdout" 2>"$dir/run.stderr" || rc=$?
  run_dir="$(ls -d "$dir"/.gepa/runs/*/ 2>/dev/null | head -1)"
  if [ "$rc" -ne 0 ] || [ ! -f "$run_dir/result.json" ]; then
    echo "[$(date -u +%H:%M:%S)] $name: failed (exit $rc); see $dir/run.stderr" >&2
    continue
  fi
  python3 "$here/summarize.py" row "$name" "$run_dir" "$build" "$template" "$project" "$seed" >>"$rows"
  python3 "$here/summarize.py" table "$rows" >"$here/results/table.md"
  echo "[$(date -u +%H:%M:%S)] $name: done" >&2
done
