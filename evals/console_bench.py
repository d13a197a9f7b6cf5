"""Server time of the web console's pages with many edits in one namespace (issue 19: under 200 ms at 100k).

Builds a store of ``--edits`` edits in namespace ``big`` (distinct subjects, ``--review`` of them flagged for review),
starts the real app (``create_app``, auth on, an admin key) on 127.0.0.1 with uvicorn, and requests what each page
asks for: the console's ``/ui/api`` routes and the ``/v1`` routes its pages call. Each request runs ``--warmup`` times,
then ``--repeat`` times; the report gives p50/p95 of the server time (``Server-Timing: app;dur=`` that the console
adds to ``/ui`` replies: from the request reaching the app to its reply starting) and of the wall time seen by the
client on loopback (all requests, ``/v1`` ones included; an upper bound on server time).

The store is filled through ``EditMemory.add_many`` with a cheap hashing embedder (16 dimensions) instead of MiniLM:
these pages read the SQLite ledger only, never the vectors, so the embedder changes the build time (about 1 minute
for 100k instead of about 12), not what is timed. "Try it" is not timed here: it is a chat (retrieve + scope + two
model calls), measured by evals/proxy_bench.py and evals/latency_bench.py.

    python evals/console_bench.py                          # 100k edits
    python evals/console_bench.py --edits 2000 --repeat 5 --run-name console-bench-smoke

Writes evals/results/<run-name>/{results.json,summary.md,console_bench.png}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentedit.evaluation.report import machine, md_table, write_json  # noqa: E402
from agentedit.memory import EditMemory  # noqa: E402
from agentedit.server import KeyStore, ServerConfig, create_app  # noqa: E402
from agentedit.server.process import free_port  # noqa: E402

log = logging.getLogger("evals.console_bench")
NS = "big"
BUDGET_MS = 200.0


class HashEmbedder:
    """Deterministic 16-dimensional unit vectors from a hash of the text (no model)."""

    name = "hash16"
    dim = 16

    def embed(self, texts: Any) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            v = np.frombuffer(hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest(), dtype=np.uint8).astype(np.float32) - 127.5
            out[i] = v / np.linalg.norm(v)
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def build(root: Path, n: int, review: int, batch: int = 5000) -> float:
    started = time.perf_counter()
    with EditMemory("console-bench", root=root, embedder=HashEmbedder()) as mem:  # type: ignore[arg-type]
        for s in range(0, n, batch):
            rows = [{"id": f"e{i}", "prompt": f"Person {i} works as a", "subject": f"Person {i}", "target_new": f"job {i % 97}"}
                    for i in range(s, min(n, s + batch))]
            for r in rows[:max(0, review - s)]:
                r["metadata"] = {"needs_review": True, "review_reason": "bench: flagged"}
            mem.add_many(rows, namespace=NS, actor="bench")
            log.info("built %d of %d edits (%.0f s)", min(n, s + batch), n, time.perf_counter() - started)
    return time.perf_counter() - started


def requests(n: int) -> list[tuple[str, str, str]]:
    """(page, label, path) for what each page asks for."""
    today = dt.date.today().isoformat()
    mid, last = (n // 2) // 50 * 50, max(0, n - 50)
    return [
        ("all", "console page (/ui)", "/ui"),
        ("all", "session", "/ui/api/session"),
        ("Edits", "first page (50)", "/ui/api/edits?limit=50"),
        ("Edits", f"page at offset {mid:,}", f"/ui/api/edits?limit=50&offset={mid}"),
        ("Edits", f"last page (offset {last:,})", f"/ui/api/edits?limit=50&offset={last}"),
        ("Edits", "status all", "/ui/api/edits?limit=50&status=all"),
        ("Edits", "subject filter", "/ui/api/edits?limit=50&subject=Person%20777"),
        ("Edits", "text search 'person 777'", "/ui/api/edits?limit=50&text=person%20777"),
        ("Edits", "text search (no match)", "/ui/api/edits?limit=50&text=zzzz"),
        ("Edits", "created since today", f"/ui/api/edits?limit=50&since={today}"),
        ("Edits", "flagged for review", "/ui/api/edits?limit=50&review=true"),
        ("An edit", "edit + history + recent questions", f"/ui/api/edits/e{n // 2}"),
        ("Conflicts and review", "open conflicts (/v1)", "/v1/conflicts"),
        ("Conflicts and review", "parses to review (/v1)", "/v1/edits?review=true&limit=100"),
        ("Reports", "eval runs", "/ui/api/reports"),
        ("Reports", "server metrics", "/ui/api/metrics"),
    ]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))], 2)


def time_all(url: str, key: str, n: int, warmup: int, repeat: int) -> list[dict[str, Any]]:
    rows = []
    headers = {"authorization": f"Bearer {key}", "x-agentedit-namespace": NS}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        for page, label, path in requests(n):
            server, wall = [], []
            for i in range(warmup + repeat):
                t = time.perf_counter()
                r = client.get(path)
                elapsed = (time.perf_counter() - t) * 1000.0
                if r.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {r.status_code}: {r.text[:300]}")
                if i >= warmup:
                    wall.append(elapsed)
                    st = r.headers.get("server-timing", "")
                    if "dur=" in st:
                        server.append(float(st.split("dur=")[1]))
            rows.append({"page": page, "request": label, "path": path,
                         "server_p50_ms": pct(server, 0.5) if server else None, "server_p95_ms": pct(server, 0.95) if server else None,
                         "wall_p50_ms": pct(wall, 0.5), "wall_p95_ms": pct(wall, 0.95), "wall_mean_ms": round(statistics.mean(wall), 2)})
            log.info("%-45s server p50 %s ms, wall p50 %.1f ms", label, rows[-1]["server_p50_ms"], rows[-1]["wall_p50_ms"])
    return rows


def serve(app: Any) -> tuple[str, Any, threading.Thread]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("the app did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def plot(path: Path, rows: list[dict[str, Any]], n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["request"] for r in rows]
    vals = [r["server_p50_ms"] if r["server_p50_ms"] is not None else r["wall_p50_ms"] for r in rows]
    p95 = [r["server_p95_ms"] if r["server_p95_ms"] is not None else r["wall_p95_ms"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 6))
    y = range(len(rows))
    ax.barh(y, p95, color="#c9d7ea", label="p95")
    ax.barh(y, vals, color="#2f6db5", label="p50")
    ax.axvline(BUDGET_MS, color="#a4161a", linestyle="--", label=f"{BUDGET_MS:.0f} ms")
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("ms (server time for /ui routes; client wall time for /v1 ones)")
    ax.set_title(f"Console requests with {n:,} edits in the namespace")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edits", type=int, default=100_000)
    ap.add_argument("--review", type=int, default=20, help="edits flagged for review (the first ones)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--run-name", default="console-bench")
    ap.add_argument("--store-dir", help="build (or reuse) the store here instead of a temporary folder")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tmp = Path(args.store_dir) if args.store_dir else Path(tempfile.mkdtemp(prefix="agentedit-console-bench-"))
    try:
        built_s = None
        if not (tmp / "console-bench" / "ledger.sqlite").exists():
            built_s = round(build(tmp, args.edits, args.review), 1)
        from agentedit.editor import Editor

        cfg = ServerConfig(model="openai/unused", api_base="http://127.0.0.1:9/v1", store="console-bench", namespace=NS,
                           store_dir=str(tmp), max_retries=0, timeout=5)
        keys = KeyStore(cfg.resolved_keys_path())
        key, _ = keys.create(role="admin", namespaces=["*"], name="bench")
        factory = (lambda c: Editor(settings=c.settings,
                                    memory=EditMemory("console-bench", root=tmp, embedder=HashEmbedder())))  # type: ignore[arg-type]
        url, server, thread = serve(create_app(cfg, editor_factory=factory))
        try:
            active = httpx.get(url + "/healthz", headers={"authorization": f"Bearer {key}"}).json()["active_edits"]
            load = [round(os.getloadavg()[0], 2)]
            rows = time_all(url, key, args.edits, args.warmup, args.repeat)
            load.append(round(os.getloadavg()[0], 2))
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            keys.close()
    finally:
        if not args.store_dir:
            shutil.rmtree(tmp, ignore_errors=True)
    out = ROOT / "evals" / "results" / args.run_name
    out.mkdir(parents=True, exist_ok=True)
    over = [r["request"] for r in rows if (r["server_p50_ms"] or r["wall_p50_ms"]) > BUDGET_MS]
    report = {"edits": args.edits, "active_edits": active, "flagged_for_review": args.review, "build_s": built_s,
              "warmup": args.warmup, "repeat": args.repeat, "budget_ms": BUDGET_MS, "over_budget_p50": over,
              "machine": machine(), "load_average_1min_start_end": load,
              "embedder": "hash16 (pages read the ledger only)", "rows": rows,
              "written": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    write_json(out / "results.json", report)
    plot(out / "console_bench.png", rows, active)
    cols = ["page", "request", "server_p50_ms", "server_p95_ms", "wall_p50_ms", "wall_p95_ms"]
    lines = [f"# Console requests with {active:,} active edits in one namespace", "",
             f"{args.repeat} timed requests each after {args.warmup} warm-up ones, one client, loopback; {machine()}, "
             f"load average {load[0]} at the start and {load[1]} at the end (other jobs share the machine). "
             "Server time: the console's `Server-Timing` header (`/ui` routes "
             "only); wall: the client's time per request.", "", md_table(rows, cols), "",
             f"Over {BUDGET_MS:.0f} ms at p50: {', '.join(over) if over else 'none'}.", "",
             "The ledger (schema 3) pages in creation order from the index on (namespace, status, created_at, id), "
             "and the review queue and the date window are SQL conditions on indexed columns.", "",
             "![requests](console_bench.png)", ""]
    (out / "summary.md").write_text("\n".join(lines), "utf-8")
    print(json.dumps({"out": str(out), "over_budget_p50": over}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
