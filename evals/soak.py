"""Soak of a real ``agentedit serve``: many clients, many namespaces, racing writes and a faulty upstream.

Clients (threads, one keep-alive connection each, one write key per namespace) mix chats (plain and streamed),
creates on a small set of subjects (so creates of one subject and relation race), PATCH and DELETE of the same
edits (so they race), batch imports, lists and reads. The upstream is a stand-in OpenAI-compatible server in this
process that injects a fault when a chat's text asks for one (``[fault:500]``, ``[fault:429]``, ``[fault:garbage]``,
``[fault:cut]``: a streamed reply cut before its finish; a plain request with that marker gets a whole reply), so
every proxy reply can be judged: a 5xx on a request whose upstream did not fail is the
proxy's own. After the run the store is checked through the API:

- every acknowledged create is still there, in its namespace (no acknowledged write lost);
- at most one active edit per (namespace, subject, relation);
- every edit's history chains (each event's ``before`` is the previous event's ``after``);
- a key of one namespace never sees another namespace's edit, and no chat applied another namespace's edit.

    python evals/soak.py --minutes 10 --clients 32 --namespaces 8

Writes evals/results/<run-name>/{results.json,summary.md,soak.png}.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ("500", "429", "garbage", "cut")
SUBJECTS = ["Zephyr", "Orion", "Vega", "Lumen", "Atlas", "Nimbus"]
RELATIONS = ["{}'s default port is", "The owner of {} is", "{} was released in"]
UPSTREAM_STATUSES = {429, 502, 503, 504}  # what the proxy may answer when the upstream failed


class FaultyUpstream:
    """An OpenAI-compatible chat endpoint that fails on request: the fault is named in the last message's text."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                text = json.dumps(body.get("messages", [])[-1:])
                fault = next((f for f in FAULTS if f"[fault:{f}]" in text), "ok")
                upstream.seen[fault] += 1
                if fault == "500":
                    return self._send(500, b'{"error": {"message": "upstream broke", "type": "server_error"}}')
                if fault == "429":
                    return self._send(429, b'{"error": {"message": "slow down", "type": "rate_limit"}}', {"retry-after": "1"})
                if fault == "garbage":
                    return self._send(200, b"<html>not json", ctype="text/event-stream" if body.get("stream") else "application/json")
                base = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "standin"}
                if body.get("stream"):
                    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "fine"}, "finish_reason": None}]}]
                    if fault != "cut":
                        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                    raw = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + ("" if fault == "cut" else "data: [DONE]\n\n")
                    return self._send(200, raw.encode(), ctype="text/event-stream")
                reply = {"id": "c", "object": "chat.completion", "created": 0, "model": "standin",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
                return self._send(200, json.dumps(reply).encode())

            def _send(self, status: int, raw: bytes, headers: dict[str, str] | None = None,
                      ctype: str = "application/json") -> None:
                try:
                    self.send_response(status)
                    self.send_header("content-type", ctype)
                    self.send_header("content-length", str(len(raw)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Tally:
    """Every request's outcome, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.status: Counter[tuple[str, int]] = Counter()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.own_5xx: list[dict[str, Any]] = []
        self.foreign_applied: list[dict[str, Any]] = []
        self.acked: dict[tuple[str, str], dict[str, Any]] = {}  # (namespace, id) -> the acknowledged record
        self.timeline: list[tuple[float, str, int]] = []
        self.by_fault: Counter[tuple[str, str, int]] = Counter()  # (op, fault, proxy status)
        self.silent_stream_failures: list[dict[str, Any]] = []
        self.retry_after_missing = 0

    def judge_fault(self, op: str, fault: str, resp: httpx.Response) -> None:
        """A failed upstream must never look like a successful answer, and a 429 must say when to come back."""
        with self.lock:
            self.by_fault[(op, fault, resp.status_code)] += 1
            if resp.status_code == 429 and "retry-after" not in resp.headers:
                self.retry_after_missing += 1
            if op == "stream" and fault != "ok" and resp.status_code == 200 and '"error"' not in resp.text:
                self.silent_stream_failures.append({"fault": fault, "tail": resp.text[-200:]})

    def note(self, op: str, status: int, ms: float, t: float, *, faulted: bool = False, detail: str = "") -> None:
        with self.lock:
            self.status[(op, status)] += 1
            self.latency[op].append(ms)
            self.timeline.append((t, op, status))
            if status >= 500 and not (faulted and status in UPSTREAM_STATUSES):
                self.own_5xx.append({"op": op, "status": status, "detail": detail[:300]})


def client(idx: int, url: str, keys: dict[str, str], tally: Tally, stop: float, seed: int) -> None:
    rng = random.Random(seed * 1000 + idx)
    namespaces = sorted(keys)
    ns = namespaces[idx % len(namespaces)]
    mine: list[str] = []
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {keys[ns]}"}, timeout=60) as http:
        while time.monotonic() < stop:
            op = rng.choices(["chat", "stream", "create", "patch", "delete", "batch", "list", "get"],
                             weights=[30, 8, 20, 10, 8, 4, 10, 10])[0]
            subject, relation = rng.choice(SUBJECTS), rng.choice(RELATIONS)
            fault = rng.choice(FAULTS) if op in ("chat", "stream") and rng.random() < 0.15 else None
            t0 = time.monotonic()
            try:
                resp = _request(http, op, rng, ns, subject, relation, mine, fault)
            except httpx.HTTPError as exc:  # a dropped connection is the proxy's fault unless the upstream failed
                tally.note(op, 599, (time.monotonic() - t0) * 1000, t0, faulted=fault is not None, detail=repr(exc))
                continue
            if resp is None:
                continue
            ms = (time.monotonic() - t0) * 1000
            tally.note(op, resp.status_code, ms, t0, faulted=fault is not None, detail=resp.text)
            if op in ("chat", "stream"):
                tally.judge_fault(op, fault or "ok", resp)
            _learn(op, resp, ns, mine, tally)


def _request(http: httpx.Client, op: str, rng: random.Random, ns: str, subject: str, relation: str, mine: list[str],
             fault: str | None) -> httpx.Response | None:
    if op in ("chat", "stream"):
        q = f"What is {subject}'s default port?" + (f" [fault:{fault}]" if fault else "")
        body = {"model": "standin", "messages": [{"role": "user", "content": q}], "stream": op == "stream"}
        if op == "stream":
            with http.stream("POST", "/v1/chat/completions", json=body) as r:
                text = "".join(r.iter_text())
            return httpx.Response(r.status_code, text=text, headers=r.headers)
        return http.post("/v1/chat/completions", json=body)
    if op == "create":
        eid = f"{ns}-{rng.getrandbits(48):012x}"
        return http.post("/v1/edits", json={"id": eid, "prompt": relation.format(subject), "subject": subject,
                                            "target_new": str(rng.randint(1, 9999))})
    if op == "batch":
        edits = [{"id": f"{ns}-{rng.getrandbits(48):012x}", "prompt": rng.choice(RELATIONS).format(s), "subject": s,
                  "target_new": str(rng.randint(1, 9999))} for s in rng.sample(SUBJECTS, 3)]
        return http.post("/v1/edits/batch", json={"edits": edits})
    if op in ("patch", "delete", "get") and not mine:
        return None
    target = rng.choice(mine) if mine else ""
    if op == "patch":
        return http.patch(f"/v1/edits/{target}", json={"target_new": str(rng.randint(1, 9999))})
    if op == "delete":
        return http.delete(f"/v1/edits/{target}")
    if op == "get":
        return http.get(f"/v1/edits/{target}")
    return http.get("/v1/edits", params={"status": "all", "limit": 50})


def _learn(op: str, resp: httpx.Response, ns: str, mine: list[str], tally: Tally) -> None:
    if op == "create" and resp.status_code == 201:
        rec = resp.json()
        mine.append(rec["id"])
        with tally.lock:
            tally.acked[(ns, rec["id"])] = rec
    elif op == "batch" and resp.status_code == 201:
        for eid in resp.json()["ids"]:
            mine.append(eid)
            with tally.lock:
                tally.acked[(ns, eid)] = {"id": eid}
    elif op in ("chat", "stream") and resp.status_code == 200:
        applied = (resp.headers.get("x-agentedit-applied") or "").split(",")
        foreign = [a for a in applied if a and not a.startswith(ns + "-")]
        if foreign:
            with tally.lock:
                tally.foreign_applied.append({"namespace": ns, "applied": foreign})


def check(url: str, keys: dict[str, str], tally: Tally) -> dict[str, Any]:
    """The invariants, read back through the API with each namespace's own key."""
    out: Counter[str] = Counter()
    examples: list[str] = []
    for ns, key in keys.items():
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=60) as http:
            recs, offset = [], 0
            while True:
                page = http.get("/v1/edits", params={"status": "all", "limit": 1000, "offset": offset}).json()
                recs += page["data"]
                offset += len(page["data"])
                if not page["has_more"]:
                    break
            by_id = {r["id"]: r for r in recs}
            lost = [eid for (n, eid) in tally.acked if n == ns and eid not in by_id]
            out["lost_writes"] += len(lost)
            examples += [f"lost {ns}/{e}" for e in lost[:3]]
            active = Counter((r["subject"], r["relation"]) for r in recs if r["status"] == "active")
            dup = [k for k, n in active.items() if n > 1]
            out["duplicate_active_keys"] += len(dup)
            examples += [f"{ns}: {n} active for {k}" for k, n in active.items() if n > 1][:3]
            out["foreign_visible"] += sum(1 for r in recs if r["namespace"] != ns or not r["id"].startswith(ns + "-"))
            for eid in rng_sample(list(by_id), 40):
                events = http.get(f"/v1/edits/{eid}/history").json()["data"]
                own = [e for e in events if e.get("edit_id") == eid]
                for prev, nxt in zip(own, own[1:]):
                    if prev.get("after") is not None and nxt.get("before") is not None and prev["after"] != nxt["before"]:
                        out["broken_history_chains"] += 1
                        examples.append(f"history of {ns}/{eid}: event {nxt.get('action')} before != previous after")
                        break
            other = next(n for n in keys if n != ns)
            probe = next((e for (n, e) in tally.acked if n == other), None)
            if probe is not None and http.get(f"/v1/edits/{probe}").status_code != 404:
                out["cross_namespace_reads"] += 1
            out["edits_checked"] += len(recs)
    return {**out, "examples": examples[:20]}


def rng_sample(items: list[str], k: int) -> list[str]:
    return random.Random(0).sample(items, min(k, len(items)))


def start_server(work: Path, upstream: str, namespaces: list[str], retries: int) -> tuple[subprocess.Popen, str, dict[str, str]]:
    from agentedit.server import KeyStore, ServerConfig
    from agentedit.server.process import free_port

    stores = work / "stores"
    store = KeyStore(ServerConfig(store="soak", store_dir=str(stores)).resolved_keys_path())
    keys = {ns: store.create(role="write", namespaces=[ns], name=f"soak-{ns}")[0] for ns in namespaces}
    store.close()
    port = free_port()
    cmd = [sys.executable, "-m", "agentedit", "--store-dir", str(stores), "--scope", "similarity", "serve", "--store", "soak",
           "--model", "openai/standin", "--api-base", upstream, "--port", str(port), "--retries", str(retries),
           "--timeout", "10", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1",
                                                 "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url, keys
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the proxy did not start within 180 s")


def write_report(out: Path, result: dict[str, Any], tally: Tally) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    inv = result["invariants"]
    lines = [f"# Soak: {result['clients']} clients, {result['namespaces']} namespaces, {result['minutes']} min", "",
             f"Machine: {result['machine']}. Upstream: stand-in with injected faults on {result['faulted_share']:.0%} of chats. "
             f"{result['requests']} requests ({result['requests_per_s']:.1f}/s).", "",
             "| check | count |", "|---|---|"]
    for k in ("own_5xx", "lost_writes", "duplicate_active_keys", "broken_history_chains", "cross_namespace_reads",
              "foreign_visible", "foreign_applied", "silent_stream_failures", "429_without_retry_after"):
        lines.append(f"| {k.replace('_', ' ')} | {inv.get(k, 0)} |")
    lines += ["", "| upstream fault -> proxy reply | count |", "|---|---|"]
    lines += [f"| {k} | {n} |" for k, n in result["faults"].items()]
    lines += ["", "| operation | requests | statuses | p50 ms | p95 ms |", "|---|---|---|---|---|"]
    for op, row in sorted(result["operations"].items()):
        lines.append(f"| {op} | {row['n']} | {row['statuses']} | {row['p50_ms']} | {row['p95_ms']} |")
    if inv.get("examples"):
        lines += ["", "Examples:", *[f"- {e}" for e in inv["examples"]]]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t0 = min(t for t, _, _ in tally.timeline)
        fig, ax = plt.subplots(figsize=(8, 3.5))
        for label, pick in (("2xx", lambda s: s < 300), ("4xx", lambda s: 400 <= s < 500), ("5xx", lambda s: s >= 500)):
            ts = [t - t0 for t, _, s in tally.timeline if pick(s)]
            if ts:
                ax.hist(ts, bins=60, histtype="step", label=label)
        ax.set_xlabel("seconds into the soak")
        ax.set_ylabel("replies per bin")
        ax.legend()
        ax.set_title("Replies over time by status class")
        fig.tight_layout()
        fig.savefig(out / "soak.png", dpi=110)
    except ImportError:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--namespaces", type=int, default=8)
    ap.add_argument("--retries", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-name", default="soak")
    ap.add_argument("--out-dir", default=str(ROOT / "evals" / "results"))
    args = ap.parse_args()
    namespaces = [f"ns{i}" for i in range(args.namespaces)]
    work = Path(tempfile.mkdtemp(prefix="agentedit-soak-"))
    upstream = FaultyUpstream()
    proc, url, keys = start_server(work, upstream.url, namespaces, args.retries)
    tally = Tally()
    started = time.monotonic()
    stop = started + args.minutes * 60
    try:
        threads = [threading.Thread(target=client, args=(i, url, keys, tally, stop, args.seed)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        invariants = check(url, keys, tally)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        upstream.close()
        shutil.rmtree(work, ignore_errors=True)
    ops: dict[str, Any] = {}
    for op, lat in tally.latency.items():
        lat = sorted(lat)
        ops[op] = {"n": len(lat), "statuses": {str(s): n for (o, s), n in sorted(tally.status.items()) if o == op},
                   "p50_ms": round(statistics.median(lat), 1), "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1)}
    n = sum(tally.status.values())
    chats = sum(v for (o, _), v in tally.status.items() if o in ("chat", "stream"))
    result = {"suite": "soak", "clients": args.clients, "namespaces": args.namespaces, "minutes": args.minutes,
              "machine": "2 cores, CPU", "wall_s": round(wall, 1), "requests": n, "requests_per_s": round(n / wall, 2),
              "faulted_share": round(sum(upstream.seen[f] for f in FAULTS) / max(1, sum(upstream.seen.values())), 3),
              "upstream_requests": dict(upstream.seen), "chats": chats, "acknowledged_writes": len(tally.acked),
              "invariants": {**invariants, "own_5xx": len(tally.own_5xx), "foreign_applied": len(tally.foreign_applied),
                             "silent_stream_failures": len(tally.silent_stream_failures),
                             "429_without_retry_after": tally.retry_after_missing,
                             "own_5xx_examples": tally.own_5xx[:10],
                             "silent_stream_examples": tally.silent_stream_failures[:5]},
              "faults": {f"{op} {fault} -> {status}": n for (op, fault, status), n in sorted(tally.by_fault.items())},
              "operations": ops}
    write_report(Path(args.out_dir) / args.run_name, result, tally)
    print(json.dumps({k: result[k] for k in ("requests", "requests_per_s", "acknowledged_writes")} | {"invariants": {
        k: v for k, v in result["invariants"].items() if not k.endswith("examples")}}, indent=2))


if __name__ == "__main__":
    main()
