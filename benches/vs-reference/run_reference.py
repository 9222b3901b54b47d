#!/usr/bin/env python3
"""Runs the reference gepa (gepa-ai/gepa, from PyPI) on the benchmark task against the mock server.

Installs nothing. Run it with the interpreter of a venv that has the reference installed:

    python3 -m venv /tmp/gepa-ref-venv
    /tmp/gepa-ref-venv/bin/pip install gepa==0.1.4
    /tmp/gepa-ref-venv/bin/python run_reference.py --port PORT --max-metric-calls 300 --seed 0 [--task main|deep]

The task (`--task`, bench_task.py's; the mock must serve the same one, which is checked) gives
the seed candidate, components and data. It calls the public API, `gepa.optimize(...)`, with a
small custom GEPAAdapter (HTTP via urllib, exact match with feedback, as gepa-tui's `exact`
evaluator with `feedback_fields = ["hint"]`) and a reflection_lm callable that asks the mock's
reflection model. Everything else is the
reference's default: pareto candidate selection, round-robin components, epoch-shuffled
minibatches of 3, strict-improvement acceptance, skip-perfect-score, no merge, one proposal per
iteration (SingleMutationSampling).

The adapter scores a batch with a thread pool of `--workers` (default 10, the default
`max_litellm_workers` of the reference's own DefaultAdapter); `--workers 1` is a sequential
adapter. `batch_evaluate` flattens several (candidate, batch) pairs into the same pool, which only
matters when the reference plans several proposals per iteration (`--independent-sampling N`,
the reference's own parallel-proposal option; not its default).

Prints a JSON summary on stdout's last line (and to `--json-out`): wall_seconds (around
gepa.optimize only), best_val_score, metric_calls, candidates, mock requests, task.
"""

import argparse
import json
import os
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_task  # noqa: E402

import gepa  # noqa: E402
from gepa.core.adapter import EvaluationBatch  # noqa: E402


class Mock:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def chat(self, model, messages):
        body = json.dumps({"model": model, "messages": messages}).encode()
        req = urllib.request.Request(
            self.base + "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=120) as r:
            reply = json.load(r)
        return reply["choices"][0]["message"]["content"] or ""

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=10) as r:
            return json.load(r)

    def post(self, path):
        req = urllib.request.Request(self.base + path, data=b"{}", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)


class MockAdapter:
    """A GEPAAdapter for the benchmark task: one chat call per example, exact-match scoring."""

    # None: the reference's default reflective proposal (its default prompt and fence extraction).
    propose_new_texts = None

    def __init__(self, mock, workers):
        self.mock = mock
        self.pool = ThreadPoolExecutor(max_workers=workers)

    def _run_one(self, candidate, ex):
        messages = [
            {"role": "system", "content": bench_task.system_message(candidate)},
            {"role": "user", "content": ex["input"]},
        ]
        try:
            output = self.mock.chat(bench_task.TASK_MODEL, messages)
        except Exception as e:  # an example's failure scores 0, never raises (adapter contract)
            output = f"(the system failed: {e})"
        score, feedback = bench_task.exact_feedback(ex["expected"], output, ex["hint"])
        return output, score, {"input": ex["input"], "output": output, "feedback": feedback}

    def _pack(self, results, capture_traces):
        return EvaluationBatch(
            outputs=[r[0] for r in results],
            scores=[r[1] for r in results],
            trajectories=[r[2] for r in results] if capture_traces else None,
        )

    def evaluate(self, batch, candidate, capture_traces=False):
        results = list(self.pool.map(lambda ex: self._run_one(candidate, ex), batch))
        return self._pack(results, capture_traces)

    def batch_evaluate(self, items):
        flat = [(ci, ex) for ci, (_, batch) in enumerate(items) for ex in batch]
        results = list(self.pool.map(lambda p: self._run_one(items[p[0]][0], p[1]), flat))
        out, k = [], 0
        for _, batch in items:
            out.append(self._pack(results[k : k + len(batch)], True))
            k += len(batch)
        return out

    def make_reflective_dataset(self, candidate, eval_batch, components_to_update):
        records = [
            {"Inputs": {"input": t["input"]}, "Generated Outputs": t["output"], "Feedback": t["feedback"]}
            for t in eval_batch.trajectories
        ]
        return {comp: records for comp in components_to_update}


class QuietLogger:
    """Collects the reference's log lines in memory (its default prints every iteration)."""

    def __init__(self):
        self.lines = []

    def log(self, message):
        self.lines.append(message)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--max-metric-calls", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--task", choices=bench_task.TASKS, default="main", help="the task (default main)")
    ap.add_argument("--workers", type=int, default=10, help="threads scoring a batch (default 10)")
    ap.add_argument("--independent-sampling", type=int, default=0,
                    help="N > 0: the reference's IndependentSampling(N) (N proposals per iteration)")
    ap.add_argument("--pxn", help="P,N: the reference's PxNSampling(P, N) (P parents x N proposals per iteration)")
    ap.add_argument("--top-k", type=int, default=0, help="K > 0: the reference's TopKImprovements(K) selection")
    ap.add_argument("--best-improvement", action="store_true",
                    help="the reference's BestImprovement selection (one accepted child per iteration)")
    ap.add_argument("--json-out")
    ap.add_argument("--log-out", help="write the reference's log lines here")
    args = ap.parse_args()

    bench_task.configure(args.task)
    mock = Mock(args.port)
    served = mock.get("/stats")
    if served.get("task", "main") != args.task:
        sys.exit(f"the mock serves task {served.get('task')!r}, not {args.task!r}: start it with --task {args.task}")
    adapter = MockAdapter(mock, args.workers)
    logger = QuietLogger()

    def reflection_lm(prompt):
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return mock.chat(bench_task.REFLECTION_MODEL, messages)

    extra = {}
    if args.independent_sampling > 0:
        from gepa.strategies.proposal_sampling import IndependentSampling

        extra["sampling_strategy"] = IndependentSampling(args.independent_sampling)
    if args.pxn:
        from gepa.strategies.proposal_sampling import PxNSampling

        p, n = (int(x) for x in args.pxn.split(","))
        extra["sampling_strategy"] = PxNSampling(p, n)
    if args.top_k > 0:
        from gepa.strategies.proposal_selection import TopKImprovements

        extra["selection_strategy"] = TopKImprovements(args.top_k)
    if args.best_improvement:
        from gepa.strategies.proposal_selection import BestImprovement

        extra["selection_strategy"] = BestImprovement()

    before = mock.get("/stats")["requests"]
    t0 = time.perf_counter()
    result = gepa.optimize(
        seed_candidate=bench_task.seed_candidate(),
        trainset=bench_task.trainset(),
        valset=bench_task.valset(),
        adapter=adapter,
        reflection_lm=reflection_lm,
        max_metric_calls=args.max_metric_calls,
        seed=args.seed,
        logger=logger,
        **extra,
    )
    wall = time.perf_counter() - t0
    requests = mock.get("/stats")["requests"] - before

    if args.log_out:
        with open(args.log_out, "w") as f:
            f.write("\n".join(logger.lines) + "\n")
    best = result.best_idx
    summary = {
        "tool": "reference",
        "gepa_version": getattr(gepa, "__version__", None) or _dist_version(),
        "task": args.task,
        "rules_per_reflection": served.get("rules_per_reflection"),
        "seed": args.seed,
        "max_metric_calls": args.max_metric_calls,
        "workers": args.workers,
        "independent_sampling": args.independent_sampling,
        "best_improvement": args.best_improvement,
        "pxn": args.pxn,
        "top_k": args.top_k,
        "wall_seconds": round(wall, 3),
        "best_val_score": result.val_aggregate_scores[best],
        "seed_val_score": result.val_aggregate_scores[0],
        "metric_calls": result.total_metric_calls,
        "candidates": len(result.candidates),
        "mock_requests": requests,
        "best_candidate": result.candidates[best],
    }
    line = json.dumps(summary)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(line + "\n")
    print(line)


def _dist_version():
    try:
        from importlib.metadata import version

        return version("gepa")
    except Exception:
        return None


if __name__ == "__main__":
    main()
