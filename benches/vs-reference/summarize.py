#!/usr/bin/env python3
"""Prints the benchmark table from a results folder written by run.sh (ref-N.json, tui-N.json).

    python3 summarize.py RESULTS_DIR

One row per run ("ahead": gepa-tui rounds planned before the round just before them committed,
voided ones too; 0 means the run went one proposal at a time), then per tool: mean best val, seeds reaching 1.0, median wall, the wall ratio
to the reference, the range of metric calls; then the task and the settings each side ran with
("default" for a gepa-tui setting run.sh did not write to gepa.toml, i.e. the engine default).
"""

import glob
import json
import os
import statistics
import sys


def load(out, prefix):
    rows = []
    for p in sorted(glob.glob(os.path.join(out, f"{prefix}-*.json"))):
        if p.endswith(".events.json"):
            continue
        rows.append(json.load(open(p)))
    return sorted(rows, key=lambda r: r["seed"])


def setting(rows, key):
    """The value of a gepa-tui setting over the runs: "default" when not written (None or absent,
    results of an older run.sh that always wrote it have the value)."""
    vals = []
    for r in rows:
        v = r.get(key)
        v = "default" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
        if v not in vals:
            vals.append(v)
    return "/".join(vals)


def joined(rows, key, missing):
    vals = []
    for r in rows:
        v = str(r.get(key, missing))
        if v not in vals:
            vals.append(v)
    return "/".join(vals)


def main():
    out = sys.argv[1]
    ref, tui = load(out, "ref"), load(out, "tui")
    rows = ref + tui
    if not rows:
        print(f"no results in {out}")
        return
    med = lambda rs, k: statistics.median(r[k] for r in rs)

    print(f"task {joined(rows, 'task', 'main')}, rules per reflection {joined(rows, 'rules_per_reflection', '?')}, "
          f"budget {joined(rows, 'max_metric_calls', '?')}")
    print()
    hdr = f"{'tool':<10} {'seed':>4} {'wall s':>8} {'process s':>10} {'best val':>9} {'metric calls':>13} {'mock reqs':>10} {'cands':>6} {'peak':>5} {'ahead':>6}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['tool']:<10} {r['seed']:>4} {r['wall_seconds']:>8.2f} {r['process_seconds']:>10.2f} "
              f"{r['best_val_score']:>9.3f} {r['metric_calls']:>13} {r['mock_requests']:>10} {r['candidates']:>6} {r.get('peak_in_flight', 0):>5} {r.get('planned_ahead', '-'):>6}")

    print()
    hdr = f"{'tool':<10} {'runs':>4} {'mean best val':>14} {'seeds at 1.0':>13} {'median wall s':>14} {'wall / ref':>11} {'metric calls':>13}"
    print(hdr)
    print("-" * len(hdr))
    for name, rs in (("reference", ref), ("gepa-tui", tui)):
        if not rs:
            continue
        perfect = sum(1 for r in rs if r["best_val_score"] >= 1.0 - 1e-9)
        ratio = f"{med(rs, 'wall_seconds') / med(ref, 'wall_seconds'):.2f}" if ref else "-"
        calls = f"{min(r['metric_calls'] for r in rs)}-{max(r['metric_calls'] for r in rs)}"
        print(f"{name:<10} {len(rs):>4} {statistics.mean(r['best_val_score'] for r in rs):>14.3f} "
              f"{f'{perfect}/{len(rs)}':>13} {med(rs, 'wall_seconds'):>14.2f} {ratio:>11} {calls:>13}")

    if ref and tui:
        print()
        print(f"median wall: reference {med(ref, 'wall_seconds'):.2f} s, gepa-tui {med(tui, 'wall_seconds'):.2f} s, "
              f"ratio gepa-tui/reference {med(tui, 'wall_seconds') / med(ref, 'wall_seconds'):.2f}")
        print(f"median process wall ratio {med(tui, 'process_seconds') / med(ref, 'process_seconds'):.2f}")
        print(f"best val: reference min {min(r['best_val_score'] for r in ref):.3f} "
              f"mean {statistics.mean(r['best_val_score'] for r in ref):.3f}; "
              f"gepa-tui min {min(r['best_val_score'] for r in tui):.3f} "
              f"mean {statistics.mean(r['best_val_score'] for r in tui):.3f}")
    print()
    if tui:
        print(f"gepa-tui settings: proposals_per_round {setting(tui, 'proposals_per_round')}, "
              f"pipeline_lag {setting(tui, 'pipeline_lag')}, cache_evaluations {setting(tui, 'cache_evaluations')}, "
              f"concurrency {setting(tui, 'concurrency')}, model concurrency {setting(tui, 'model_concurrency')}, "
              f"more [optimizer]: {setting(tui, 'extra_optimizer')}")
    if ref:
        print(f"reference settings: workers {joined(ref, 'workers', '?')}, "
              f"independent_sampling {joined(ref, 'independent_sampling', '?')}, "
              f"best_improvement {joined(ref, 'best_improvement', '?')}, pxn {joined(ref, 'pxn', '?')}, "
              f"top_k {joined(ref, 'top_k', '?')}")


if __name__ == "__main__":
    main()
