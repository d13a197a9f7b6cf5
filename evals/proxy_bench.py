"""What the edit proxy (``agentedit serve``) costs, how much load it takes, and whether a crash loses edits.

Everything runs on 127.0.0.1. The upstream is a stand-in written here: a minimal OpenAI-compatible
server (its own process) that answers at once, so the figures are about agentedit's code, not a model.

1. Added latency: the same requests sent straight to the stand-in and through the proxy, one at a
   time; p50/p95 of plain requests and time to the first content token of streamed ones, with
   ``--sizes`` edits in memory (default 1k and 100k; half the questions are paraphrases of stored
   edits, half are unrelated). Scope checker: the default (similarity).
2. Load: ``--clients`` concurrent clients for ``--duration`` seconds against the largest store:
   requests/s, errors, latency.
3. Crash safety: a 10k-edit batch import is killed with SIGKILL (during embedding, during the index
   write, at a random moment) while a second client keeps adding single edits; after a restart the
   batch must be all there or absent, every acknowledged single edit present, and the index must
   agree with the ledger.

    python evals/proxy_bench.py                                   # everything, default sizes (slow: builds a 100k store)
    python evals/proxy_bench.py --sizes 1000 --duration 10 --crash-batch 2000 --run-name proxy-smoke

Writes ``evals/results/<run-name>/`` (results.json, summary.md, PNG plots). Stores are built once
under ``--work-dir`` and reused.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import random
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentedit.evaluation.loaders import data_dir  # noqa: E402
from agentedit.evaluation.report import line_plot, machine, md_table, write_json  # noqa: E402
from agentedit.server.process import ChildServer, free_port, proxy_process  # noqa: E402

log = logging.getLogger("evals.proxy_bench")


# -- the stand-in upstream ---------------------------------------------------------------------------
_REPLY = {"id": "chatcmpl-standin", "object": "chat.completion", "created": 0, "model": "standin",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}


def _stream_body() -> bytes:
    base = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 0, "model": "standin"}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
              {**base, "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": None}]},
              {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
              {**base, "choices": [], "usage": _REPLY["usage"]}]
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


async def _standin_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    plain, stream = json.dumps(_REPLY).encode(), _stream_body()
    try:
        for _ in range(1_000_000):  # keep-alive: one request per turn, bounded
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            streamed = b'"stream": true' in body or b'"stream":true' in body
            payload, ctype = (stream, b"text/event-stream") if streamed else (plain, b"application/json")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: " + ctype + b"\r\ncontent-length: "
                         + str(len(payload)).encode() + b"\r\n\r\n" + payload)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


def run_standin(port: int) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_standin_connection, "127.0.0.1", port, limit=2**24)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- processes -----------------------------------------------------------------------------------------
def start_proxy(work: Path, store: str, upstream: str, log_file: Path, scope: str = "similarity") -> ChildServer:
    return proxy_process(store=store, store_dir=work / "stores", model="openai/standin", api_base=upstream, scope=scope,
                         extra=("--retries", "0", "--max-batch-mb", "32"), log_path=log_file).start(timeout=600)


def admin_key(work: Path, store: str) -> str:
    from agentedit.server import KeyStore, ServerConfig

    keys = KeyStore(ServerConfig(store=store, store_dir=str(work / "stores")).resolved_keys_path())
    try:
        return keys.create(role="admin", namespaces=["*"], name="bench")[0]
    finally:
        keys.close()


# -- stores --------------------------------------------------------------------------------------------
def counterfact(data: Path) -> list[dict[str, Any]]:
    return json.loads((data / "counterfact" / "counterfact-train.json").read_text("utf-8"))


def synthetic_edits(n: int) -> list[dict[str, Any]]:
    """Distinct filler facts beyond CounterFact (people, jobs, cities)."""
    first = ["Ada", "Bela", "Cyrus", "Dara", "Emil", "Fenna", "Gus", "Hana", "Ivo", "Jana", "Kai", "Lia", "Milo", "Nora",
             "Otto", "Pia", "Quin", "Rosa", "Sami", "Tove", "Ugo", "Vera", "Wim", "Xena", "Yuri", "Zoe", "Arlo", "Bea",
             "Cleo", "Dion", "Elsa", "Finn", "Gaia", "Hugo", "Ines", "Joel", "Kira", "Lars", "Maya", "Nils"]
    last = ["Abbott", "Berg", "Castro", "Dahl", "Eng", "Falk", "Gray", "Holm", "Ito", "Jung", "Kerr", "Lund", "Moss",
            "Nash", "Ortiz", "Park", "Quist", "Roth", "Sato", "Toft", "Uhl", "Voss", "Wong", "Yates", "Zorn", "Adler",
            "Brandt", "Costa", "Diaz", "Eklund", "Ford", "Gil", "Hale", "Ibsen", "Jovic", "Kahn", "Lowe", "Mertz"]
    jobs = ["pilot", "baker", "chemist", "judge", "nurse", "sculptor", "editor", "farmer", "geologist", "violinist",
            "architect", "plumber", "surgeon", "linguist", "botanist", "carpenter", "diplomat", "economist", "jeweller",
            "astronomer", "librarian", "mechanic", "pharmacist", "translator", "zoologist", "curator", "florist",
            "historian", "locksmith", "navigator", "potter", "referee", "tailor", "welder", "cartographer"]
    cities = ["Oslo", "Quito", "Lagos", "Hanoi", "Perth", "Graz", "Cusco", "Tartu", "Izmir", "Leeds", "Porto",
              "Turku", "Malmo", "Split", "Kyoto", "Davao", "Tromso", "Sucre", "Brno", "Cork"]
    out = []
    for i, (c, f, l, j) in enumerate(itertools.product(cities, first, last, jobs)):
        if i >= n:
            break
        out.append({"statement": f"{f} {l} works as a {j} in {c}.", "subject": f"{f} {l}"})
    if len(out) < n:
        raise SystemExit(f"only {len(out)} synthetic facts available; lower --sizes")
    return out


def build_store(work: Path, size: int, cases: list[dict[str, Any]]) -> str:
    """A store holding ``size`` edits: CounterFact cases first, then synthetic facts. Built once."""
    from agentedit.memory import EditMemory

    name = f"bench-{size}"
    done = work / "stores" / name / "BUILT"
    if done.exists():
        return name
    shutil.rmtree(work / "stores" / name, ignore_errors=True)
    n_cf = min(size, len(cases))
    items: list[dict[str, Any]] = [{"prompt": c["prompt"], "subject": c["subject"], "target_new": c["target_new"]}
                                   for c in cases[:n_cf]]
    items += synthetic_edits(size - n_cf)
    started = time.perf_counter()
    with EditMemory(name, root=work / "stores") as mem:
        for i in range(0, len(items), 5000):
            mem.add_many(items[i:i + 5000], actor="bench")
            log.info("store %s: %d/%d edits (%.0f s)", name, min(i + 5000, len(items)), len(items), time.perf_counter() - started)
    done.write_text(json.dumps({"edits": size, "build_s": round(time.perf_counter() - started, 1)}))
    return name


# -- 1. latency ----------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    vals = sorted(values)
    return round(vals[min(len(vals) - 1, int(q * len(vals)))], 3) if vals else float("nan")


def questions(cases: list[dict[str, Any]], n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Alternating (kind, text): paraphrases of stored edits and unrelated locality prompts."""
    rng = random.Random(seed)
    picked = rng.sample(cases[:1000], k=min(n, 1000))
    out = []
    for i, case in enumerate(picked):
        out.append(("related", case["rephrase_prompt"]) if i % 2 == 0 else ("unrelated", case["locality_prompt"]))
    return out


def time_requests(client: httpx.Client, url: str, qs: list[tuple[str, str]], *, stream: bool) -> tuple[list[float], list[dict]]:
    """Client-side ms per request (to the first content token when streaming) and the proxy's own report."""
    times, infos = [], []
    for _, text in qs:
        body = {"model": "standin", "messages": [{"role": "user", "content": text}], "max_tokens": 8}
        started = time.perf_counter()
        if not stream:
            r = client.post(url, json=body)
            r.raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
            infos.append(r.json().get("agentedit", {}))
            continue
        first = None
        info: dict[str, Any] = {}
        with client.stream("POST", url, json={**body, "stream": True}) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line.startswith("data: {"):
                    continue
                chunk = json.loads(line[6:])
                info = info or chunk.get("agentedit", {})
                if first is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    first = (time.perf_counter() - started) * 1000
        times.append(first if first is not None else float("nan"))
        infos.append(info)
    return times, infos


def measure_latency(work: Path, store: str, upstream: str, qs: list[tuple[str, str]], scope: str) -> dict[str, Any]:
    key = admin_key(work, store)
    proxy = start_proxy(work, store, upstream, work / f"proxy-{store}.log", scope)
    url = proxy.base_url
    try:
        with httpx.Client(headers={"authorization": f"Bearer {key}"}, timeout=60) as client:
            warm = qs[:20]
            for target in (upstream, url + "/v1"):
                time_requests(client, target + "/chat/completions", warm, stream=False)
                time_requests(client, target + "/chat/completions", warm, stream=True)
            out: dict[str, Any] = {"n_requests": len(qs)}
            for mode, stream in (("plain", False), ("stream_ttft", True)):
                direct, _ = time_requests(client, upstream + "/chat/completions", qs, stream=stream)
                proxied, infos = time_requests(client, url + "/v1/chat/completions", qs, stream=stream)
                related = [t for t, (kind, _) in zip(proxied, qs) if kind == "related"]
                unrelated = [t for t, (kind, _) in zip(proxied, qs) if kind == "unrelated"]
                out[mode] = {
                    "direct_p50_ms": pct(direct, 0.5), "direct_p95_ms": pct(direct, 0.95),
                    "proxy_p50_ms": pct(proxied, 0.5), "proxy_p95_ms": pct(proxied, 0.95),
                    "added_p50_ms": round(pct(proxied, 0.5) - pct(direct, 0.5), 3),
                    "added_p95_ms": round(pct(proxied, 0.95) - pct(direct, 0.95), 3),
                    "proxy_p50_related_ms": pct(related, 0.5), "proxy_p50_unrelated_ms": pct(unrelated, 0.5),
                    "applied_fraction_related": round(sum(bool(i.get("applied")) for i, (k, _) in zip(infos, qs) if k == "related")
                                                      / max(1, len(related)), 3),
                    "applied_fraction_unrelated": round(sum(bool(i.get("applied")) for i, (k, _) in zip(infos, qs) if k == "unrelated")
                                                        / max(1, len(unrelated)), 3),
                }
                for step in ("retrieve", "scope", "compose"):
                    out[mode][f"server_{step}_p50_ms"] = pct([i["timings"][step] for i in infos if step in i.get("timings", {})], 0.5)
            return out
    finally:
        proxy.stop()


# -- 2. load -------------------------------------------------------------------------------------------
def measure_load(work: Path, store: str, upstream: str, qs: list[tuple[str, str]], clients: int, duration: float) -> dict[str, Any]:
    key = admin_key(work, store)
    proxy = start_proxy(work, store, upstream, work / f"proxy-{store}.log")
    url = proxy.base_url
    done: list[float] = []
    latencies: list[float] = []
    errors: dict[str, int] = {}
    per_second: dict[int, int] = {}

    async def worker(client: httpx.AsyncClient, offset: int, t0: float, deadline: float) -> None:
        for i in itertools.count(offset):
            if time.perf_counter() >= deadline:
                return
            text = qs[i % len(qs)][1]
            started = time.perf_counter()
            try:
                r = await client.post(url + "/v1/chat/completions", json={
                    "model": "standin", "messages": [{"role": "user", "content": text}], "max_tokens": 8})
                ok = r.status_code == 200
                kind = f"http {r.status_code}"
            except httpx.HTTPError as exc:
                ok, kind = False, type(exc).__name__
            now = time.perf_counter()
            if ok:
                latencies.append((now - started) * 1000)
                done.append(now)
                per_second[int(now - t0)] = per_second.get(int(now - t0), 0) + 1
            else:
                errors[kind] = errors.get(kind, 0) + 1

    async def run() -> float:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=60, limits=limits) as client:
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(client, k * 7, t0, t0 + duration) for k in range(clients)))
            return time.perf_counter() - t0

    try:
        elapsed = asyncio.run(run())
    finally:
        proxy.stop()
    n_err = sum(errors.values())
    return {"clients": clients, "duration_s": round(elapsed, 2), "requests_ok": len(done), "errors": n_err,
            "error_kinds": errors, "per_s": round(len(done) / elapsed, 1), "p50_ms": pct(latencies, 0.5),
            "p95_ms": pct(latencies, 0.95), "p99_ms": pct(latencies, 0.99),
            "per_second": [per_second.get(s, 0) for s in range(int(elapsed) + 1)]}


# -- 3. crash safety -----------------------------------------------------------------------------------
def crash_trial(work: Path, upstream: str, batch: list[dict[str, Any]], trial: int, when: str,
                kill_after: Callable[[Path, float], bool]) -> dict[str, Any]:
    store = f"crash-{trial}"
    shutil.rmtree(work / "stores" / store, ignore_errors=True)
    key = admin_key(work, store)
    headers = {"authorization": f"Bearer {key}"}
    proxy = start_proxy(work, store, upstream, work / f"proxy-{store}.log")
    url = proxy.base_url
    acked: list[str] = []
    batch_reply: dict[str, Any] = {}
    killed = threading.Event()

    def singles() -> None:
        with httpx.Client(headers=headers, timeout=30) as c:
            for i in range(20000):
                if killed.is_set():
                    return
                try:
                    r = c.post(url + "/v1/edits", json={"id": f"ack-{i}", "statement": f"Acknowledged fact {i} holds the value {i * 7}."})
                except httpx.HTTPError:
                    return
                if r.status_code == 201:
                    acked.append(f"ack-{i}")

    def send_batch() -> None:
        try:
            r = httpx.post(url + "/v1/edits/batch", json={"edits": batch}, headers=headers, timeout=600)
            batch_reply["status"] = r.status_code
        except httpx.HTTPError as exc:
            batch_reply["error"] = type(exc).__name__

    writer = threading.Thread(target=singles, daemon=True)
    sender = threading.Thread(target=send_batch, daemon=True)
    writer.start()
    started = time.perf_counter()
    sender.start()
    store_dir = work / "stores" / store
    for _ in range(600_000):  # poll every ~1 ms, bounded (~10 min)
        if kill_after(store_dir, time.perf_counter() - started) or not sender.is_alive():
            break
        time.sleep(0.001)
    marker_seen = any(store_dir.glob("PENDING*"))
    kill_at = time.perf_counter() - started
    proxy.kill()
    killed.set()
    sender.join(timeout=30)
    writer.join(timeout=30)

    proxy = start_proxy(work, store, upstream, work / f"proxy-{store}.log")  # restart: reconciles on open
    url = proxy.base_url
    try:
        present: dict[str, str] = {}
        with httpx.Client(headers=headers, timeout=60) as c:
            for offset in range(0, 1_000_000, 1000):
                page = c.get(url + "/v1/edits", params={"status": "all", "limit": 1000, "offset": offset}).json()
                present.update({e["id"]: e["status"] for e in page["data"]})
                if not page["has_more"]:
                    break
            health = c.get(url + "/healthz").json()
            batch_ids = [e["id"] for e in batch]
            n_batch = sum(i in present for i in batch_ids)
            probe = c.post(url + "/v1/chat/completions", json={"model": "standin", "messages": [
                {"role": "user", "content": batch[0]["statement"]}]}).json()
        missing_acked = [i for i in acked if present.get(i) != "active"]
        return {"trial": trial, "kill": when, "kill_at_s": round(kill_at, 2), "index_write_in_progress": marker_seen,
                "batch_reply": batch_reply.get("status", batch_reply.get("error", "none")),
                "batch_present": n_batch, "batch_size": len(batch), "all_or_nothing": n_batch in (0, len(batch)),
                "acknowledged_singles": len(acked), "acknowledged_missing": len(missing_acked),
                "active_after_restart": health["active_edits"],
                "index_agrees": health["active_edits"] == sum(1 for s in present.values() if s == "active"),
                "batch_edit_served": batch[0]["id"] in probe["agentedit"]["applied"],
                "consistent_serving": (batch[0]["id"] in probe["agentedit"]["applied"]) == (n_batch == len(batch))}
    finally:
        proxy.stop()


class _BatchWrite:
    """Watches a store's write markers: the batch's is the one alive longer than ``min_age`` s (a single edit's
    lives for milliseconds), so a kill can be aimed at the batch's index write or just after its commit."""

    def __init__(self, min_age: float = 1.5) -> None:
        self.min_age = min_age
        self.first_seen: dict[str, float] = {}
        self.marker: str | None = None

    def _poll(self, store_dir: Path, t: float) -> None:
        for path in store_dir.glob("PENDING*"):
            seen = self.first_seen.setdefault(path.name, t)
            if self.marker is None and t - seen >= self.min_age:
                self.marker = path.name

    def during(self, store_dir: Path, t: float) -> bool:
        self._poll(store_dir, t)
        return self.marker is not None

    def after_commit(self, store_dir: Path, t: float) -> bool:
        self._poll(store_dir, t)
        return self.marker is not None and not (store_dir / self.marker).exists()


def measure_crash(work: Path, upstream: str, size: int, trials: int, seed: int) -> dict[str, Any]:
    batch = [{"id": f"batch-{i}", "statement": f"Batch fact {i}: the depot of line {i} is in sector {i % 97}.",
              "subject": f"line {i}"} for i in range(size)]
    rng = random.Random(seed)
    plans: list[tuple[str, Callable[[Path, float], bool]]] = [
        ("during embedding (2 s in)", lambda d, t: t >= 2.0),
        ("during the batch's index write", _BatchWrite().during),
        ("just after the batch's commit", _BatchWrite().after_commit),
    ]
    for _ in range(max(0, trials - 3)):
        at = rng.uniform(1.0, size / 300.0)
        plans.append((f"at a random moment ({at:.1f} s)", lambda d, t, at=at: t >= at))
    results = []
    for trial, (when, rule) in enumerate(plans[:trials]):
        res = crash_trial(work, upstream, batch, trial, when, rule)
        log.info("crash trial %d (%s): %s", trial, when, res)
        results.append(res)
    return {"batch_size": size, "trials": results,
            "all_or_nothing": all(r["all_or_nothing"] for r in results),
            "acknowledged_missing": sum(r["acknowledged_missing"] for r in results),
            "index_agrees": all(r["index_agrees"] and r["consistent_serving"] for r in results)}


# -- report --------------------------------------------------------------------------------------------
def write_report(out: Path, report: dict[str, Any]) -> None:
    write_json(out / "results.json", report)
    lines = [f"# Proxy benchmark: {report['run_name']}", "",
             f"Machine: {report['machine']}. Upstream: {report['upstream']}. Proxy: {report['backend']}; "
             f"embedder {report['embedder']}. Started {report['started']}, {report['wall_s']} s. "
             f"Load average (1 min) {report['load_avg_1m_at_start']} at the start, {report.get('load_avg_1m_at_end', '?')} "
             "at the end (other jobs shared the machine when this is above the core count).", ""]
    if report.get("kept_from_earlier_run"):
        kept = report["kept_from_earlier_run"]
        lines += [f"The {', '.join(kept['parts'])} figures come from the run started {kept['started']} "
                  f"(load average {kept['load_avg_1m_at_start']} at its start); the rest from this one.", ""]
    lat = report.get("latency", {})
    if lat:
        rows = []
        for scope, by_size in lat.items():
            for size, r in by_size.items():
                for mode in ("plain", "stream_ttft"):
                    m = r[mode]
                    rows.append({"scope": scope, "edits": size, "request": mode, "direct p50": m["direct_p50_ms"],
                                 "proxy p50": m["proxy_p50_ms"], "added p50": m["added_p50_ms"], "direct p95": m["direct_p95_ms"],
                                 "proxy p95": m["proxy_p95_ms"], "added p95": m["added_p95_ms"],
                                 "retrieve p50": m["server_retrieve_p50_ms"], "scope p50": m["server_scope_p50_ms"],
                                 "applied (related)": m["applied_fraction_related"],
                                 "applied (unrelated)": m["applied_fraction_unrelated"]})
        lines += ["## Added latency (ms, one client, sequential requests)", "",
                  md_table(rows, list(rows[0])), "",
                  "`added` = proxy minus direct at the same percentile; `stream_ttft` is time to the first content token. "
                  "`retrieve` and `scope` are the proxy's own timings of those steps (retrieve embeds the question and "
                  "searches the index; the relation checker embeds again). `applied` is the fraction of questions that got "
                  "an edit: paraphrases of stored edits (related) and unrelated prompts.", ""]
        series: dict[str, list[float]] = {}
        sizes = sorted({int(size) for by_size in lat.values() for size in by_size})
        for scope, by_size in lat.items():
            if all(str(x) in by_size for x in sizes):
                series[f"{scope}: plain, added p50"] = [by_size[str(x)]["plain"]["added_p50_ms"] for x in sizes]
                series[f"{scope}: stream TTFT, added p50"] = [by_size[str(x)]["stream_ttft"]["added_p50_ms"] for x in sizes]
        line_plot(out / "added_latency.png", sizes, series, xlabel="edits in memory", ylabel="ms added by the proxy (p50)",
                  title="Latency the proxy adds")
    load = report.get("load")
    if load:
        lines += [f"## Load: {load['clients']} concurrent clients for {load['duration_s']} s ({load['n_edits_in_memory']} edits, "
                  f"{report.get('load_and_crash_scope', 'similarity')} scope)", "",
                  md_table([load], ["requests_ok", "errors", "per_s", "p50_ms", "p95_ms", "p99_ms"]), "",
                  f"Errors by kind: {load['error_kinds'] or 'none'}. The load generator runs on the same machine.", ""]
        line_plot(out / "load.png", list(range(len(load["per_second"]))), {"completed requests": load["per_second"]},
                  xlabel="second", ylabel="requests completed", title=f"{load['clients']} clients", logx=False)
    crash = report.get("crash")
    if crash:
        cols = ["trial", "kill", "kill_at_s", "index_write_in_progress", "batch_reply", "batch_present", "all_or_nothing",
                "acknowledged_singles", "acknowledged_missing", "index_agrees", "consistent_serving"]
        lines += [f"## Crash safety: SIGKILL during a {crash['batch_size']}-edit batch import", "",
                  md_table(crash["trials"], cols), "",
                  f"All or nothing: **{crash['all_or_nothing']}**; acknowledged edits missing after restart: "
                  f"**{crash['acknowledged_missing']}**; index agrees with the ledger: **{crash['index_agrees']}**.", ""]
    (out / "summary.md").write_text("\n".join(lines), "utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 100000], help="edits in memory for the latency runs")
    ap.add_argument("--scopes", nargs="+", default=["similarity", "relation"],
                    help="scope checkers to time (the first one also serves the load and crash runs)")
    ap.add_argument("--requests", type=int, default=300, help="requests per latency measurement")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of the load run")
    ap.add_argument("--crash-batch", type=int, default=10000)
    ap.add_argument("--crash-trials", type=int, default=4)
    ap.add_argument("--skip", nargs="*", default=[], choices=["latency", "load", "crash"],
                    help="parts not to run; their figures are kept from an earlier results.json of the same run name")
    ap.add_argument("--work-dir", default="/tmp/agentedit-proxy-bench", help="stores and logs (reused between runs)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--run-name", default="proxy-bench")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stand-in-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.stand_in_upstream:
        run_standin(args.stand_in_upstream)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    os.environ.update(HF_HUB_OFFLINE="1", LITELLM_LOCAL_MODEL_COST_MAP="True")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    cases = counterfact(data_dir(args.data_dir))
    out = ROOT / "evals" / "results" / args.run_name
    t0 = time.time()
    report: dict[str, Any] = {
        "suite": "proxy", "run_name": args.run_name, "model": "stand-in upstream (answers at once)",
        "upstream": "minimal OpenAI-compatible server on 127.0.0.1 (own process)",
        "backend": "agentedit serve (uvicorn, 1 process, API keys on, embedded Chroma)", "load_and_crash_scope": "similarity",
        "embedder": "all-MiniLM-L6-v2 (CPU)", "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": 0, "config": vars(args), "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    earlier = json.loads((out / "results.json").read_text("utf-8")) if (out / "results.json").exists() else {}
    kept = [part for part in args.skip if part in earlier]
    for part in kept:
        report[part] = earlier[part]
    if kept:  # where the kept figures were measured (an earlier run may itself have kept them)
        origin = earlier.get("kept_from_earlier_run") or {}
        first = origin if set(kept) <= set(origin.get("parts", [])) else earlier
        report["kept_from_earlier_run"] = {"parts": kept, "started": first.get("started"),
                                           "load_avg_1m_at_start": first.get("load_avg_1m_at_start")}

    port = free_port()
    standin = ChildServer([sys.executable, __file__, "--stand-in-upstream", str(port)], base_url=f"http://127.0.0.1:{port}/v1",
                          health_path="/models").start(timeout=60)
    upstream = standin.base_url
    try:
        qs = questions(cases, args.requests, args.seed)
        if "latency" not in args.skip:
            report["latency"] = {}
            for scope in args.scopes:
                report["latency"][scope] = {}
                for size in args.sizes:
                    store = build_store(work, size, cases)
                    report["latency"][scope][str(size)] = measure_latency(work, store, upstream, qs, scope)
                    log.info("latency, %s scope, %d edits: %s", scope, size, report["latency"][scope][str(size)])
                    write_report(out, report)
        if "load" not in args.skip:
            size = max(args.sizes)
            store = build_store(work, size, cases)
            report["load"] = {**measure_load(work, store, upstream, qs, args.clients, args.duration), "n_edits_in_memory": size}
            log.info("load: %s", {k: v for k, v in report["load"].items() if k != "per_second"})
            write_report(out, report)
        if "crash" not in args.skip:
            report["crash"] = measure_crash(work, upstream, args.crash_batch, args.crash_trials, args.seed)
    finally:
        standin.stop()
        report["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
        report["wall_s"] = round(time.time() - t0, 1)
        write_report(out, report)
    print(f"wrote {out}/results.json and summary.md")


if __name__ == "__main__":
    main()
