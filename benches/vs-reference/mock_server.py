#!/usr/bin/env python3
"""A deterministic OpenAI-compatible mock for the benchmark (stdlib only).

    python3 mock_server.py [--port 0] [--latency 0.1] [--port-file FILE] [--task main|deep]
        [--rules-per-reflection N] [--slots N] [--backlog N] [--latency-per-char S] [--cap N]

`POST /v1/chat/completions` sleeps `--latency` seconds, then answers by the request's `model`:
`mock-task` runs the scripted task (`--task`) of bench_task.py on the system and last user message,
`mock-reflection` runs the scripted reflection on the last user message. One thread per
connection (HTTP/1.1 keep-alive), so concurrent requests overlap their sleeps.

Variants that behave like real servers: `--slots N` answers N calls at once and queues the rest
(llama-server `-np N`, Ollama; `--slots 1` is a one-slot server); `--backlog N` sets the listen
backlog (`request_queue_size`; Python's own default is 5, where a burst of new connections sees
SYN retransmits of 1 s); `--latency-per-char S` adds S seconds per character of the reply (a model
that takes longer to say more); `--cap N` refuses a call with 429 and `Retry-After: 1` while N are
in flight (a proxy or a hosted API's concurrency limit).

`GET /stats` returns the request counts, the peak number of requests in flight, and the task and
rules per reflection it serves; `POST /reset` zeroes the counts. With `--port 0` the OS picks a port, written to `--port-file`.
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_task  # noqa: E402


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.by_model = {}
        self.total = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.errors = 0
        self.refused = 0
        self.first = None
        self.last = None

    def enter(self, model):
        with self.lock:
            self.total += 1
            self.by_model[model] = self.by_model.get(model, 0) + 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            now = time.time()
            if self.first is None:
                self.first = now

    def leave(self):
        with self.lock:
            self.in_flight -= 1
            self.last = time.time()

    def snapshot(self):
        with self.lock:
            return {
                "requests": self.total,
                "by_model": dict(self.by_model),
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
                "errors": self.errors,
                "refused": self.refused,
                "first_request": self.first,
                "last_reply": self.last,
            }


COUNTERS = Counters()
LATENCY = 0.1


def content_text(content):
    """A message's text: a string, or the text parts of a multimodal list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def answer(body):
    model = body.get("model", "")
    messages = body.get("messages") or []
    system = "\n".join(content_text(m.get("content")) for m in messages if m.get("role") == "system")
    users = [content_text(m.get("content")) for m in messages if m.get("role") == "user"]
    last_user = users[-1] if users else ""
    if model == bench_task.TASK_MODEL:
        return bench_task.task_reply(system, last_user)
    if model == bench_task.REFLECTION_MODEL:
        return bench_task.reflection_reply(last_user)
    raise ValueError(f"unknown model {model!r}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, and each reply goes out in one write: with Nagle on, a body written after the
    # headers waits for the client's delayed ACK (~40 ms) on a kept-alive connection, which
    # would tax clients that reuse connections (gepa-tui) and not those that don't (urllib).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet
        pass

    def _send(self, code, obj, headers=None):
        data = json.dumps(obj).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}.get(code, "")
        head = f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        for k, v in (headers or {}).items():
            head += f"{k}: {v}\r\n"
        if self.close_connection:
            head += "Connection: close\r\n"
        self.wfile.write(head.encode() + b"\r\n" + data)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path.rstrip("/") == "/stats":
            snap = COUNTERS.snapshot()
            snap["task"] = bench_task.TASK
            snap["rules_per_reflection"] = bench_task.rules_per_reflection()
            self._send(200, snap)
        elif self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [
                {"id": bench_task.TASK_MODEL, "object": "model"},
                {"id": bench_task.REFLECTION_MODEL, "object": "model"},
            ]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        raw = self._body()
        path = self.path.rstrip("/")
        if path == "/reset":
            with COUNTERS.lock:
                COUNTERS.reset()
            self._send(200, {"ok": True})
            return
        if not path.endswith("/chat/completions"):
            self._send(404, {"error": {"message": "not found"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            with COUNTERS.lock:
                COUNTERS.errors += 1
            self._send(400, {"error": {"message": "body is not JSON"}})
            return
        model = body.get("model", "")
        if CAP is not None:
            with COUNTERS.lock:
                full = COUNTERS.in_flight >= CAP
                if full:
                    COUNTERS.refused += 1
            if full:
                self._send(429, {"error": {"message": f"at most {CAP} requests at once"}}, {"Retry-After": "1"})
                return
        COUNTERS.enter(model)
        try:
            try:
                text = answer(body)
            except ValueError as e:
                with COUNTERS.lock:
                    COUNTERS.errors += 1
                self._send(400, {"error": {"message": str(e)}})
                return
            delay = LATENCY + LATENCY_PER_CHAR * len(text)
            if SLOTS is None:
                time.sleep(delay)
            else:
                # A server with few slots (llama-server -np N, Ollama): the rest wait their turn.
                with SLOTS:
                    time.sleep(delay)
            prompt_chars = sum(len(content_text(m.get("content"))) for m in body.get("messages") or [])
            usage = {
                "prompt_tokens": max(1, prompt_chars // 4),
                "completion_tokens": max(1, len(text) // 4),
            }
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            self._send(200, {
                "id": "chatcmpl-mock",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }],
                "usage": usage,
            })
        finally:
            COUNTERS.leave()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops SYNs under a burst of new connections, and a dropped SYN
    # costs the client a 1 s retransmit: far more than the latency under test.
    request_queue_size = 1024


SLOTS = None
CAP = None
LATENCY_PER_CHAR = 0.0


def main():
    global LATENCY, SLOTS, CAP, LATENCY_PER_CHAR
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.1, help="seconds slept per chat call (default 0.1)")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--task", choices=bench_task.TASKS, default="main", help="the task (default main)")
    ap.add_argument("--rules-per-reflection", type=int, default=None,
                    help="new rules the scripted reflection adds at most (default: main 2, deep 1; "
                         "1 on main is the harder task)")
    ap.add_argument("--slots", type=int, default=None,
                    help="answer at most this many calls at once, the rest wait (default: no limit)")
    ap.add_argument("--backlog", type=int, default=1024,
                    help="listen backlog, request_queue_size (default 1024; Python's own default is 5)")
    ap.add_argument("--latency-per-char", type=float, default=0.0,
                    help="seconds added per character of the reply (default 0)")
    ap.add_argument("--cap", type=int, default=None,
                    help="refuse calls with 429 (Retry-After: 1) while this many are in flight (default: no cap)")
    args = ap.parse_args()
    LATENCY = args.latency
    LATENCY_PER_CHAR = args.latency_per_char
    CAP = args.cap
    Server.request_queue_size = args.backlog
    if args.slots is not None:
        SLOTS = threading.Semaphore(args.slots)
    bench_task.configure(args.task, args.rules_per_reflection)
    srv = Server((args.host, args.port), Handler)
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, args.port_file)
    print(f"mock listening on http://{args.host}:{port}/v1 (latency {LATENCY}s + {LATENCY_PER_CHAR}s/char, "
          f"slots {args.slots}, backlog {args.backlog}, cap {CAP}, task {bench_task.TASK}, "
          f"rules per reflection {bench_task.rules_per_reflection()})", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
