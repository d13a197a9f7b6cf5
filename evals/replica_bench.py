"""Replicas over PostgreSQL: propagation delay, kill -9 trials, and the import rate on PostgreSQL next to SQLite.

Two ``agentedit serve`` processes, each with its own working folder, over one real PostgreSQL server (Debian's
binaries, started here on 127.0.0.1) and one real Chroma server; the upstream is a stand-in OpenAI-compatible
server (the figures are the store's, not a model's).

- **Propagation**: an edit written through replica A; the time from A's acknowledgement until replica B lists it
  (``GET /v1/edits/{id}``) and until B applies it to a question (``x-agentedit-applied``); a key revoked in the
  database, until B answers 401.
- **kill -9**: a batch written through A while another client writes single edits through A; A is killed with
  SIGKILL (at the batch's index write, or at a random moment). Then: is the batch all or nothing, is every
  acknowledged single there, and does B heal the shared index (index count = active edits in the ledger)?
- **Import**: ``EditMemory.add_many`` of one batch in process, on PostgreSQL + Chroma server and on SQLite +
  embedded Chroma, side by side, same embedder and same edits.

    python evals/replica_bench.py --name replicas-session4 [--writes 50] [--trials 3] [--import-size 20000]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from agentedit.memory.store import EditMemory  # noqa: E402
from agentedit.server.auth import KeyStore  # noqa: E402
from agentedit.server.pg_process import LocalPostgres  # noqa: E402
from agentedit.server.process import chroma_process, free_port, proxy_process  # noqa: E402
from evals import _report  # noqa: E402
from evals.proxy.standin import run_standin  # noqa: E402

STORE = "bench"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))], 2) if xs else float("nan")


def _replica(work: Path, name: str, pg: str, chroma: str, upstream: str):
    return proxy_process(store=STORE, store_dir=work / f"host-{name}", model="openai/standin", api_base=upstream,
                         chroma_url=chroma, extra=("--database-url", pg, "--retries", "0"),
                         log_path=work / f"replica-{name}.log")


POLLS: list[int] = []  # how many reads each _until needed (1: the first read after the acknowledgement saw it)


def _until(fn, timeout: float = 30.0) -> float:
    """Seconds until ``fn()`` is true (polled as fast as it answers)."""
    start, polls = time.perf_counter(), 1
    while not fn():
        polls += 1
        if time.perf_counter() - start > timeout:
            raise TimeoutError("the change never reached the other replica")
    POLLS.append(polls)
    return time.perf_counter() - start


def propagation(a: httpx.Client, b: httpx.Client, keys: KeyStore, writes: int) -> dict[str, Any]:
    listed, applied, revoked = [], [], []
    POLLS.clear()
    for i in range(writes):
        subject = f"Station {i} {random.randrange(10**6)}"
        rec = a.post("/v1/edits", json={"statement": f"{subject} is run by the harbour board.", "subject": subject})
        assert rec.status_code == 201, rec.text
        rid = rec.json()["id"]
        listed.append(1000 * _until(lambda: b.get(f"/v1/edits/{rid}").status_code == 200))
        ask = {"model": "m", "messages": [{"role": "user", "content": f"Who runs {subject}?"}]}
        applied.append(1000 * _until(lambda: rid in b.post("/v1/chat/completions", json=ask).headers.get(
            "x-agentedit-applied", "")))
    for _ in range(min(writes, 20)):
        secret, key = keys.create(role="query", namespaces=["default"])
        probe = httpx.Client(base_url=str(b.base_url), headers={"authorization": f"Bearer {secret}"})
        assert probe.get("/v1/edits").status_code == 200
        keys.revoke(key.id)
        revoked.append(1000 * _until(lambda: probe.get("/v1/edits").status_code == 401))
        probe.close()
    out = {name: {"n": len(xs), "p50_ms": pct(xs, 0.5), "p95_ms": pct(xs, 0.95), "max_ms": round(max(xs), 2)}
           for name, xs in (("listed_on_other", listed), ("applied_on_other", applied), ("key_revoked_on_other", revoked))}
    out["first_read_saw_it"] = {"n": len(POLLS), "fraction": round(sum(p == 1 for p in POLLS) / len(POLLS), 3)}
    return out


def _pending(pg: str, older_than_ms: int = 0) -> int:
    """Write-in-progress markers; with ``older_than_ms``, only those of writes that long in their index write (a
    single edit's lasts a few ms, a big batch's seconds)."""
    with psycopg.connect(pg, autocommit=True) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM agentedit_{STORE}.pending WHERE at::timestamptz <= now() - "
                            "make_interval(secs => %s)", (older_than_ms / 1000,)).fetchone()[0]


def kill_trial(work: Path, procs: list, admin: str, pg: str, chroma: str, trial: int, when: str, size: int,
               rng: random.Random) -> dict[str, Any]:
    a_proc, b_proc = procs
    hdr = {"authorization": f"Bearer {admin}"}
    a, b = (httpx.Client(base_url=p.base_url, headers=hdr, timeout=300) for p in procs)
    tag = f"T{trial}"
    batch = {"edits": [{"statement": f"Relay {tag}-{i} is in sector {i}.", "subject": f"Relay {tag}-{i}"}
                       for i in range(size)]}
    acked: list[str] = []
    stop = threading.Event()
    reply: dict[str, Any] = {}

    def singles() -> None:
        i = 0
        while not stop.is_set():
            try:
                r = a.post("/v1/edits", json={"statement": f"Depot {tag}-{i} is run by crew {i}.",
                                              "subject": f"Depot {tag}-{i}"})
                if r.status_code == 201:
                    acked.append(r.json()["id"])
            except httpx.HTTPError:
                return
            i += 1

    def send() -> None:
        try:
            reply["status"] = a.post("/v1/edits/batch", json=batch).status_code
        except httpx.HTTPError as exc:
            reply["error"] = type(exc).__name__

    threads = [threading.Thread(target=singles), threading.Thread(target=send)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    if when == "index write":
        while _pending(pg, older_than_ms=300) == 0 and "status" not in reply:
            time.sleep(0.005)
    else:
        time.sleep(rng.uniform(1.0, 12.0))
    kill_at = time.perf_counter() - start
    a_proc.kill()
    stop.set()
    for t in threads:
        t.join(timeout=120)
    heal_start = time.perf_counter()
    _until(lambda: _pending(pg) == 0, timeout=180)
    heal_s = time.perf_counter() - heal_start
    check = EditMemory(STORE, root=work / f"check-{trial}", database_url=pg, chroma_url=chroma)
    present = check.list(text=f"Relay {tag}-", limit=None)
    singles_found = {r.id for r in check.list(text=f"Depot {tag}-", limit=None)}
    out = {"trial": trial, "kill": when, "kill_at_s": round(kill_at, 2), "batch_reply": reply.get("status", reply.get("error")),
           "batch_present": len(present), "all_or_nothing": len(present) in (0, size),
           "acknowledged_singles": len(acked), "acknowledged_missing": len(set(acked) - singles_found),
           "heal_s": round(heal_s, 2), "index_agrees": check.index.count() == check.ledger.count(status="active")}
    check.close()
    a_proc.start(timeout=300)
    b.close(), a.close()
    return out


def import_rate(work: Path, pg: str, chroma: str, size: int) -> dict[str, Any]:
    edits = [{"statement": f"Beacon {i} stands on ridge {i % 997} of the {('north', 'south', 'east')[i % 3]} range.",
              "subject": f"Beacon {i}"} for i in range(size)]
    out = {}
    for label, kw in (("sqlite + embedded chroma", {}), ("postgresql + chroma server", {"database_url": pg, "chroma_url": chroma})):
        mem = EditMemory(f"import{size}", root=work / ("imp-" + label.split()[0]), **kw)
        mem.embedder.embed_one("warm")
        vectors_s = time.perf_counter()
        mem.embedder.embed([e["statement"] for e in edits[:2000]])
        embed_rate = 2000 / (time.perf_counter() - vectors_s)
        start = time.perf_counter()
        mem.add_many(edits)
        wall = time.perf_counter() - start
        out[label] = {"edits": size, "seconds": round(wall, 1), "edits_per_s": round(size / wall, 1),
                      "embedding_only_edits_per_s": round(embed_rate, 1)}
        mem.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="replicas")
    ap.add_argument("--writes", type=int, default=50)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--batch", type=int, default=3000)
    ap.add_argument("--import-size", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parts", nargs="+", default=["propagation", "kill9", "import"],
                    choices=["propagation", "kill9", "import"], help="what to measure (default: all)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(f"/tmp/agentedit-replica-bench-{int(time.time())}")
    work.mkdir(parents=True)
    port = free_port()
    standin = threading.Thread(target=run_standin, args=(port,), daemon=True)
    standin.start()
    upstream = f"http://127.0.0.1:{port}/v1"
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result: dict[str, Any] = {"started": started, "machine": "2 cores x86_64, CPU only", "args": vars(args),
                              "load": [round(os.getloadavg()[0], 2)]}
    with LocalPostgres() as pg, chroma_process(work / "chroma", log_path=work / "chroma.log") as chroma:
        keys = KeyStore(pg.url, store=STORE)
        admin, _ = keys.create(role="admin", namespaces=["*"])
        procs = [_replica(work, n, pg.url, chroma.base_url, upstream) for n in "ab"] \
            if {"propagation", "kill9"} & set(args.parts) else []
        for p in procs:
            p.start(timeout=300)
        try:
            hdr = {"authorization": f"Bearer {admin}"}
            a, b = (httpx.Client(base_url=p.base_url, headers=hdr, timeout=60) for p in procs) if procs else (None, None)
            if "propagation" in args.parts:
                result["propagation"] = propagation(a, b, keys, args.writes)
            if "kill9" in args.parts:
                result["kill9"] = [kill_trial(work, procs, admin, pg.url, chroma.base_url, t,
                                              "index write" if t == 0 else "random moment", args.batch, rng)
                                   for t in range(args.trials)]
        finally:
            for p in procs:
                p.stop()
            keys.close()
        if "import" in args.parts:
            result["import"] = import_rate(work, pg.url, chroma.base_url, args.import_size)
    result["load"].append(round(os.getloadavg()[0], 2))
    lines = [f"# Replicas over PostgreSQL: {args.name}", "",
             f"Machine: {result['machine']}. Started {started}. Two `agentedit serve` replicas (separate folders) over one "
             "PostgreSQL 15 server and one Chroma server on 127.0.0.1; stand-in upstream. Embedder all-MiniLM-L6-v2.", "",
             f"Load average {result['load'][0]} at the start, {result['load'][1]} at the end (2 cores; above 2 the "
             "machine was shared)."]
    prop = {k: v for k, v in result.get("propagation", {}).items() if k != "first_read_saw_it"}
    if "propagation" in result:
        lines += ["", "## Propagation (A acknowledges, B sees)", "", "| what | n | p50 ms | p95 ms | max ms |",
                  "|---|---|---|---|---|"]
        lines += [f"| {k} | {v['n']} | {v['p50_ms']} | {v['p95_ms']} | {v['max_ms']} |" for k, v in prop.items()]
        seen = result["propagation"]["first_read_saw_it"]
        lines += ["", f"The first read through B after A's acknowledgement already saw the change in {seen['fraction']:.1%} "
                  f"of {seen['n']} cases: the delay is one request's own time (nothing is cached between replicas)."]
    if result.get("kill9"):
        cols = list(result["kill9"][0])
        lines += ["", f"## kill -9 of replica A during a {args.batch}-edit batch (singles written alongside)", "",
                  "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(str(t[c]) for c in cols) + " |" for t in result["kill9"]]
    if "import" in result:
        lines += ["", f"## Import of one {args.import_size}-edit batch (in process)", "",
                  "| store | edits/s | seconds | embedding alone, edits/s |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['edits_per_s']} | {v['seconds']} | {v['embedding_only_edits_per_s']} |"
                  for k, v in result["import"].items()]
    bars = {f"{k} p50 ms": v["p50_ms"] for k, v in prop.items()} or {
        f"{k} edits/s": v["edits_per_s"] for k, v in result.get("import", {}).items()}
    _report.write(args.name, result, lines, bars, title="Replica propagation (p50)" if prop else "Import rate",
                  ylabel="ms" if prop else "edits/s")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
