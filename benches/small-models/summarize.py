#!/usr/bin/env python3
"""Issue 31's live table on a small local model, read from the runs themselves.

  summarize.py row NAME RUN_DIR BUILD TEMPLATE PROJECT SEED >> rows.jsonl
      one JSON row for one finished run: read from its events.jsonl (committed rounds only) and
      result.json, never typed by hand
  summarize.py table rows.jsonl > table.md
      the markdown table BENCHMARKS.md quotes
  summarize.py proposals RUN_DIR
      each committed proposal of one run, a line each: round, slot, parent, how the answers
      ended (cut off / unchanged / no instruction), the new text's start, and the outcome; for
      reading why two runs of one cell differ

A proposal "reflected" when its parent was not perfect on its minibatch (gepa's skip); it "ended
with no child" when its outcome is one the engine's adapt window counts as no child (every answer
cut off, unchanged, empty, the reflection failed: ProposalOutcome::no_child in src/engine/event.rs).
Reflection tokens are those of the committed reflection events not served from the response cache.
"""
import json
import sys
from collections import Counter

NO_CHILD = {
    "reflection_truncated": "cut off",
    "unchanged": "unchanged",
    "empty_answer": "empty",
    "reflection_failed": "failed",
}


def committed_events(path):
    """Events of committed rounds (a round counts from its round_finished; a voided or
    uncommitted round's events are dropped), plus the events outside rounds."""
    pending = {}
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line
            kind = ev.get("event")
            rnd = ev.get("round")
            if kind == "round_started":
                pending[rnd] = [ev]
            elif kind == "round_voided":
                pending.pop(rnd, None)
            elif kind == "resumed":
                pending.clear()
                out.append(ev)
            elif kind == "round_finished":
                out.extend(pending.pop(rnd, []))
                out.append(ev)
            elif isinstance(rnd, int) and rnd in pending:
                pending[rnd].append(ev)
            else:
                out.append(ev)
    return out


def row(name, run_dir, build, template, project, seed):
    evs = committed_events(f"{run_dir}/events.jsonl")
    with open(f"{run_dir}/result.json") as f:
        res = json.load(f)
    outcomes = [e["outcome"]["kind"] for e in evs if e.get("event") == "proposal_finished"]
    reflected = [o for o in outcomes if o != "skipped_perfect"]
    no_child = Counter(NO_CHILD[o] for o in reflected if o in NO_CHILD)
    refl = [e for e in evs if e.get("event") == "reflection" and not e.get("cached")]
    tin = sum(e.get("usage", {}).get("input_tokens", 0) for e in refl)
    tout = sum(e.get("usage", {}).get("output_tokens", 0) for e in refl)
    # best val after each committed round, to compare runs at equal metric calls
    curve = [[e["metric_calls"], e["best_val"]] for e in evs if e.get("event") == "round_finished"]
    adapted = [
        f"r{e['round']}: {e['step']['kind']}" for e in evs if e.get("event") == "reflection_adapted"
    ]
    return {
        "name": name,
        "build": build,
        "template": template,
        "project": project,
        "seed": int(seed),
        "proposals_reflected": len(reflected),
        "no_child": sum(no_child.values()),
        "no_child_by_reason": dict(no_child),
        "accepted": outcomes.count("accepted"),
        "reflection_calls": len(refl),
        "adapted": adapted,
        "stop": res["stop_reason"],
        "metric_calls": res["metric_calls"],
        "seed_val": res["seed_val_score"],
        "best_val": res["best_val_score"],
        "test": res.get("test_score"),
        "wall_seconds": res["wall_seconds"],
        "reflection_input_tokens": tin,
        "reflection_output_tokens": tout,
        "curve": curve,
    }


def table(path):
    # A run done again (same name) replaces its earlier row.
    rows = list({r["name"]: r for r in (json.loads(l) for l in open(path) if l.strip())}.values())
    rows.sort(key=lambda r: (r["project"], r["template"], r["seed"], {"before": 0, "cutoff": 1}.get(r["build"], 2)))
    print(
        "| project | template | seed | build | proposals that reflected | ended with no child "
        "| changes of course | stop | metric calls | best val (seed) | test | wall | reflection tokens (in / out) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        n, k = r["proposals_reflected"], r["no_child"]
        share = f"{k / n:.2f}" if n else "–"
        why = ", ".join(f"{v} {w}" for w, v in sorted(r["no_child_by_reason"].items()))
        nc = f"{k} ({share}{'; ' + why if why else ''})"
        test = "–" if r["test"] is None else f"{r['test']:.3f}"
        adapted = ", ".join(r["adapted"]) or "none"
        print(
            f"| {r['project']} | {r['template']} | {r['seed']} | {r['build']} | {n} | {nc} | {adapted} "
            f"| {r['stop']} | {r['metric_calls']} | {r['best_val']:.3f} ({r['seed_val']:.3f}) | {test} "
            f"| {r['wall_seconds']:.0f} s | {r['reflection_input_tokens']:,} / {r['reflection_output_tokens']:,} |"
        )


def proposals(run_dir):
    evs = committed_events(f"{run_dir}/events.jsonl")
    refl = {(e["round"], e["slot"]): e for e in evs if e.get("event") == "reflection"}
    evals = {}
    for e in evs:
        if e.get("event") == "minibatch_evaluated":
            scores = "".join("1" if x["score"] >= 1 else ("." if x["score"] <= 0 else "h") for x in e["evals"])
            evals.setdefault((e["round"], e["slot"]), {})[e["candidate_role"]] = scores
    for e in evs:
        if e.get("event") == "round_finished":
            print(f"-- round {e['round']}: {e['metric_calls']} calls, best val {e['best_val']:.3f}")
        if e.get("event") != "proposal_finished":
            continue
        key = (e["round"], e["slot"])
        r = refl.get(key)
        o = e["outcome"]
        sc = evals.get(key, {})
        line = f"r{key[0]} s{key[1]} {o['kind']:<22} parent {sc.get('parent', '?'):<3} child {sc.get('child', '-'):<3}"
        if r:
            tries = [f"{len(r.get(k) or [])} {w}" for k, w in
                     (("cut_answers", "cut"), ("unchanged_answers", "unchanged"), ("empty_answers", "no instr")) if r.get(k)]
            if r.get("reasked_with"):
                tries.append(f"asked again with {r['reasked_with']}")
            text = " ".join(r["new_text"].split())
            line += f" out {r['usage']['output_tokens']:>4} tok [{', '.join(tries)}] {len(text.split())} words: {text[:110]!r}"
        print(line)


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "row":
        print(json.dumps(row(*sys.argv[2:])))
    elif len(sys.argv) == 3 and sys.argv[1] == "proposals":
        proposals(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "table":
        table(sys.argv[2])
    else:
        sys.exit(__doc__)
