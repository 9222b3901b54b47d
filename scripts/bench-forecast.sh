#!/usr/bin/env bash
# The forecast of `gepa-tui check` against what each sample's recorded run used: each sample is
# copied, `check --offline` forecasts it (the seed's dry run comes from the recorded replies), and
# `run --headless --offline` replays the recorded run, whose events say what it used. Prints a
# Markdown table (BENCHMARKS.md, "Forecast vs recorded use") and writes it to
# benches/forecast/results.md. Usage: scripts/bench-forecast.sh [--estimate-only]
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
cargo build -q
bin=target/debug/gepa-tui
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p benches/forecast
out=benches/forecast/results${mode:+-estimate-only}.md
{
  echo "| sample | what | forecast (low – likely – high) | recorded | likely vs recorded |"
  echo "|---|---|---|---|---|"
  for sample in sample-projects/*/; do
    name=$(basename "$sample")
    mkdir -p "$tmp/$name"
    cp -r "$sample/." "$tmp/$name/"
    rm -rf "$tmp/$name/.gepa/runs"
    $bin check --offline $mode "$tmp/$name" >"$tmp/$name.check" || true
    $bin run --headless --offline --json "$tmp/$name" >"$tmp/$name.json" 2>/dev/null
    run=$(ls "$tmp/$name/.gepa/runs")
    python3 - "$name" "$tmp/$name.check" "$tmp/$name/.gepa/runs/$run/events.jsonl" <<'EOF'
import json, re, sys
name, check, events = sys.argv[1:]
text = open(check).read()
text = text[text.index("\nForecast"):]

def span(label, which=0):
    line = next(l for l in text.splitlines() if l.startswith("  " + label + " "))
    nums = re.findall(r"([\d.]+)([kM]?)", line.split(label, 1)[1])
    vals = [float(n) * {"": 1, "k": 1e3, "M": 1e6}[u] for n, u in nums]
    return vals[3 * which: 3 * which + 3]

# What the replayed run used: committed rounds only (a voided round's events do not count).
held, committed, last = {}, [], None
for line in open(events):
    e = json.loads(line)
    kind, rnd = e["event"], e.get("round")
    if kind == "round_voided":
        held.pop(rnd, None)
    elif kind == "round_finished":
        committed += held.pop(rnd, [])
        last = e
    elif kind == "resumed":
        held.clear()
    elif rnd is not None:
        held.setdefault(rnd, []).append(e)
    elif kind == "finished":
        fin = e
proposals = sum(1 for e in committed if e["event"] == "proposal_finished")
refl = [e for e in committed if e["event"] == "reflection"]
calls = sum(1 + len(e.get("cut_answers", [])) + len(e.get("unchanged_answers", [])) for e in refl)
r_in = sum(e.get("usage", {}).get("input_tokens", 0) for e in refl)
r_out = sum(e.get("usage", {}).get("output_tokens", 0) for e in refl)
t_in, t_out = last["input_tokens"] - r_in, last["output_tokens"] - r_out
rows = [
    ("metric calls", [span("metric calls")[0], None, None], fin["metric_calls"]),
    ("proposals", span("proposals"), proposals),
    ("reflection calls", span("reflections"), calls),
    ("task tokens in", span("task model", 0), t_in),
    ("task tokens out", span("task model", 1), t_out),
    ("reflection tokens in", span("reflection", 0), r_in),
    ("reflection tokens out", span("reflection", 1), r_out),
]
for what, f, got in rows:
    if f[1] is None:
        shown, mid = f"{f[0]:.0f} (the budget)", f[0]
    else:
        shown, mid = " – ".join(f"{v:,.0f}" for v in f), f[1]
    inside = "" if f[1] is None or f[0] <= got <= f[2] else " (outside the range)"
    err = (mid - got) / got * 100 if got else float("nan")
    print(f"| {name} | {what} | {shown} | {got:,.0f} | {err:+.0f}%{inside} |")
EOF
  done
} | tee "$out"
