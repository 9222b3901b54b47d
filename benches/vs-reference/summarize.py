#!/usr/bin/env python3
"""Prints the benchmark table from a results folder written by run.sh (ref-N.json, tui-N.json)."""

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


def main():
    out = sys.argv[1]
    ref, tui = load(out, "ref"), load(out, "tui")
    hdr = f"{'tool':<10} {'seed':>4} {'wall s':>8} {'process s':>10} {'best val':>9} {'metric calls':>13} {'mock reqs':>10} {'cands':>6} {'peak':>5}"
    print(hdr)
    print("-" * len(hdr))
    for r in ref + tui:
        print(f"{r['tool']:<10} {r['seed']:>4} {r['wall_seconds']:>8.2f} {r['process_seconds']:>10.2f} "
              f"{r['best_val_score']:>9.3f} {r['metric_calls']:>13} {r['mock_requests']:>10} {r['candidates']:>6} {r.get('peak_in_flight', 0):>5}")
    if ref and tui:
        med = lambda rows, k: statistics.median(r[k] for r in rows)
        print()
        print(f"median wall: reference {med(ref, 'wall_seconds'):.2f} s, gepa-tui {med(tui, 'wall_seconds'):.2f} s, "
              f"ratio gepa-tui/reference {med(tui, 'wall_seconds') / med(ref, 'wall_seconds'):.2f}")
        print(f"median process wall ratio {med(tui, 'process_seconds') / med(ref, 'process_seconds'):.2f}")
        print(f"best val: reference min {min(r['best_val_score'] for r in ref):.3f} "
              f"mean {statistics.mean(r['best_val_score'] for r in ref):.3f}; "
              f"gepa-tui min {min(r['best_val_score'] for r in tui):.3f} "
              f"mean {statistics.mean(r['best_val_score'] for r in tui):.3f}")
        t = tui[0]
        print(f"gepa-tui settings: proposals_per_round {t['proposals_per_round']}, concurrency {t['concurrency']}, "
              f"model concurrency {t['model_concurrency']}; reference: workers {ref[0].get('workers')}, "
              f"independent_sampling {ref[0].get('independent_sampling')}")


if __name__ == "__main__":
    main()
