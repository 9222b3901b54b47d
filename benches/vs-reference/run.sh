#!/usr/bin/env bash
# gepa-tui vs the reference gepa on the same task, budget and mock server (100 ms per call).
#
#   benches/vs-reference/run.sh [options]
#
#   --task main|deep        the task (default main; deep needs many accepted steps down one lineage)
#   --budget N              max_metric_calls for both (default 300; try 600 with --task deep)
#   --reps N                repetitions, seeds 0..N-1 (default 3)
#   --latency S             mock seconds per call (default 0.1)
#   --slots N               the mock answers at most N calls at once (a local server; default: no limit)
#   --backlog N             the mock's listen backlog (default 1024; 5 is Python's http.server default)
#   --latency-per-char S    the mock adds S seconds per reply character (default 0)
#   --cap N                 the mock refuses calls with 429 while N are in flight (default: no cap)
#   --rules-per-reflection N  new rules one reflection adds at most (default: main 2, deep 1;
#                           1 on main = the harder task)
#   --python PATH           interpreter with the reference installed (default /tmp/gepa-ref-venv/bin/python)
#   --bin PATH              gepa-tui binary (default: cargo build --release, target/release/gepa-tui)
#   --proposals-per-round N gepa-tui [optimizer] proposals_per_round (default: not written, the engine's)
#   --pipeline-lag N        gepa-tui [optimizer] pipeline_lag (default: not written, the engine's)
#   --cache-evaluations true|false  gepa-tui [optimizer] cache_evaluations (default: not written)
#   --concurrency N         gepa-tui [optimizer] concurrency (default 32, the engine default)
#   --model-concurrency N   gepa-tui [models.*] concurrency (default 32, the engine default)
#   --ref-workers N         threads the reference's adapter scores a batch with (default 10)
#   --ref-args "..."        more arguments for run_reference.py (e.g. "--independent-sampling 4",
#                           "--pxn 2,2 --top-k 2")
#   --tui-optimizer "..."   more gepa-tui [optimizer] lines, ';'-separated
#                           (e.g. "proposals_per_round = 4; parents_per_round = 2")
#   --only ref|tui          run one side only
#   --out DIR               where results go (default /tmp/gepa-bench-<time>)
#
# The reference is not installed by this script. Once:
#   python3 -m venv /tmp/gepa-ref-venv && /tmp/gepa-ref-venv/bin/pip install gepa==0.1.4
set -euo pipefail
args="$*"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

task=main budget=300 reps=3 latency=0.1 rpr="" slots="" backlog="" lpc="" cap=""
python=/tmp/gepa-ref-venv/bin/python
bin="" ppr="" lag="" cache="" conc=32 mconc=32 ref_workers=10 ref_args="" only="" tui_extra=""
out="/tmp/gepa-bench-$(date +%Y%m%d-%H%M%S)"
while [ $# -gt 0 ]; do
  case "$1" in
    --task) task=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --latency) latency=$2; shift 2 ;;
    --slots) slots=$2; shift 2 ;;
    --backlog) backlog=$2; shift 2 ;;
    --latency-per-char) lpc=$2; shift 2 ;;
    --cap) cap=$2; shift 2 ;;
    --rules-per-reflection) rpr=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --proposals-per-round) ppr=$2; shift 2 ;;
    --pipeline-lag) lag=$2; shift 2 ;;
    --cache-evaluations) cache=$2; shift 2 ;;
    --concurrency) conc=$2; shift 2 ;;
    --model-concurrency) mconc=$2; shift 2 ;;
    --ref-workers) ref_workers=$2; shift 2 ;;
    --ref-args) ref_args=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --tui-optimizer) tui_extra=$2; shift 2 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$task" in main|deep) ;; *) echo "--task is main or deep, not $task" >&2; exit 2 ;; esac
case "$cache" in ""|true|false) ;; *) echo "--cache-evaluations is true or false, not $cache" >&2; exit 2 ;; esac
case "$only" in ""|ref|tui) ;; *) echo "--only is ref or tui, not $only" >&2; exit 2 ;; esac
# gepa-tui settings written to gepa.toml only when given (else the engine default runs)
tui_opts=()
[ -n "$ppr" ] && tui_opts+=(--proposals-per-round "$ppr")
[ -n "$lag" ] && tui_opts+=(--pipeline-lag "$lag")
[ -n "$cache" ] && tui_opts+=(--cache-evaluations "$cache")
mock_opts=(--task "$task")
[ -n "$rpr" ] && mock_opts+=(--rules-per-reflection "$rpr")
[ -n "$slots" ] && mock_opts+=(--slots "$slots")
[ -n "$backlog" ] && mock_opts+=(--backlog "$backlog")
[ -n "$lpc" ] && mock_opts+=(--latency-per-char "$lpc")
[ -n "$cap" ] && mock_opts+=(--cap "$cap")

if [ "$only" != "tui" ]; then
  if ! "$python" -c 'import gepa' 2>/dev/null; then
    echo "the reference gepa is not importable with $python; install it once with:" >&2
    echo "  python3 -m venv /tmp/gepa-ref-venv && /tmp/gepa-ref-venv/bin/pip install gepa==0.1.4" >&2
    exit 1
  fi
fi
if [ "$only" != "ref" ] && [ -z "$bin" ]; then
  echo "building gepa-tui (release)..." >&2
  (cd "$root" && cargo build --release --bin gepa-tui >&2)
  bin="$root/target/release/gepa-tui"
fi

mkdir -p "$out"
"$python" "$here/mock_server.py" --latency "$latency" "${mock_opts[@]}" --port-file "$out/mock.port" 2>"$out/mock.log" &
mock_pid=$!
trap 'kill "$mock_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$out/mock.port" ] && break; sleep 0.1; done
port=$(cat "$out/mock.port")
mock="http://127.0.0.1:$port"
reset() { python3 -c 'import sys,urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1]+"/reset", data=b"{}"))' "$mock"; }
# requests since the last reset, and the most requests the mock had in flight at once
stats() { python3 -c 'import json,sys,urllib.request; s=json.load(urllib.request.urlopen(sys.argv[1]+"/stats")); print(s["requests"], s["peak_in_flight"])' "$mock"; }
served_rpr=$(python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]+"/stats"))["rules_per_reflection"])' "$mock")
now() { date +%s.%N; }

echo "mock on $mock, latency ${latency}s, task $task, rules per reflection $served_rpr; budget $budget; results in $out" >&2
for ((rep = 0; rep < reps; rep++)); do
  seed=$rep
  if [ "$only" != "tui" ]; then
    echo "rep $rep: reference (seed $seed)..." >&2
    reset; t0=$(now)
    # shellcheck disable=SC2086
    "$python" "$here/run_reference.py" --port "$port" --task "$task" --max-metric-calls "$budget" --seed "$seed" \
      --workers "$ref_workers" $ref_args --json-out "$out/ref-$rep.json" --log-out "$out/ref-$rep.log" >/dev/null
    t1=$(now); read -r reqs peak < <(stats)
    python3 - "$out/ref-$rep.json" "$t0" "$t1" "$reqs" "$peak" <<'EOF'
import json, sys
p, t0, t1, reqs, peak = sys.argv[1:]
d = json.load(open(p))
d["process_seconds"] = round(float(t1) - float(t0), 3)
d["mock_requests"] = int(reqs)
d["peak_in_flight"] = int(peak)
json.dump(d, open(p, "w"))
EOF
  fi
  if [ "$only" != "ref" ]; then
    echo "rep $rep: gepa-tui (seed $seed)..." >&2
    proj="$out/project-$rep"
    rm -rf "$proj"
    python3 "$here/make_project.py" "$proj" --port "$port" --task "$task" --max-metric-calls "$budget" --seed "$seed" \
      --concurrency "$conc" --model-concurrency "$mconc" --extra-optimizer "$tui_extra" ${tui_opts[@]+"${tui_opts[@]}"}
    reset; t0=$(now)
    "$bin" run --headless --json "$proj" --seed "$seed" --max-metric-calls "$budget" \
      >"$out/tui-$rep.events.jsonl" 2>"$out/tui-$rep.stderr"
    t1=$(now); read -r reqs peak < <(stats)
    python3 - "$out/tui-$rep.events.jsonl" "$out/tui-$rep.json" "$t0" "$t1" "$reqs" "$peak" "$seed" "$budget" \
      "$task" "$served_rpr" "$conc" "$mconc" "$ppr" "$lag" "$cache" "$tui_extra" <<'EOF'
import json, sys
ev, outp, t0, t1, reqs, peak, seed, budget, task, rpr, conc, mconc, ppr, lag, cache, extra = sys.argv[1:]
fin = [json.loads(l) for l in open(ev) if l.strip()][-1]
assert fin.get("event") == "finished", fin
d = {
    "tool": "gepa-tui", "task": task, "rules_per_reflection": int(rpr),
    "seed": int(seed), "max_metric_calls": int(budget),
    "concurrency": int(conc), "model_concurrency": int(mconc),
    # null: not written to gepa.toml, the engine default ran
    "proposals_per_round": int(ppr) if ppr else None,
    "pipeline_lag": int(lag) if lag else None,
    "cache_evaluations": {"true": True, "false": False}[cache] if cache else None,
    "extra_optimizer": extra or None,
    "wall_seconds": fin["wall_seconds"], "best_val_score": fin["best_val_score"],
    "metric_calls": fin["metric_calls"], "candidates": fin["candidates"],
    "process_seconds": round(float(t1) - float(t0), 3), "mock_requests": int(reqs),
    "peak_in_flight": int(peak),
}
# Rounds planned before the round just before them committed (planned ahead), voided ones too.
evs = [json.loads(l) for l in open(ev) if l.strip()]
d["planned_ahead"] = sum(1 for e in evs if e.get("event") == "round_started" and e.get("round", 0) > 1
                         and e.get("planned_after") is not None and e["planned_after"] + 1 < e["round"])
json.dump(d, open(outp, "w"))
EOF
  fi
done

# The table, on screen and in the results folder (summary.txt, with the command and mock settings).
{
  echo "# benches/vs-reference/run.sh $args"
  echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, mock: latency ${latency}s, task $task, slots ${slots:-none}, backlog ${backlog:-1024}, latency per char ${lpc:-0}, cap ${cap:-none}"
  python3 "$here/summarize.py" "$out"
} | tee "$out/summary.txt"
