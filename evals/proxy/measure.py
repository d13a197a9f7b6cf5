"""1. The latency the proxy adds (one client, sequential requests) and 2. the load it takes (concurrent clients)."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from pathlib import Path
from typing import Any

import httpx

from agentedit.server.process import chroma_process

from .rawhttp import RawConnection
from .stores import admin_key, cpu_seconds, rss_mb, start_proxy


# -- 1. latency ----------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    vals = sorted(values)
    return round(vals[min(len(vals) - 1, int(q * len(vals)))], 3) if vals else float("nan")


def questions(cases: list[dict[str, Any]], n: int, seed: int = 0, part: int = 0) -> list[tuple[str, str]]:
    """Alternating (kind, text): paraphrases of stored edits and unrelated locality prompts. ``part`` picks one of
    three disjoint sets of ``n`` (n <= 1000) from the first 3000 cases (the same shuffle for every part)."""
    rng = random.Random(seed)
    order = rng.sample(range(min(3000, len(cases))), k=min(3000, len(cases)))
    picked = [cases[i] for i in order[part * n:(part + 1) * n]]
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


def measure_latency(work: Path, store: str, upstream: str, sets: dict[str, list[tuple[str, str]]], scope: str,
                    backend: str | None = None, upstream_client: str | None = None) -> dict[str, Any]:
    """Direct, then proxied requests per mode. ``sets`` holds disjoint questions for ``warm``, ``plain`` and
    ``stream_ttft``, so the proxy embeds every measured question (its query LRU never answers); ``plain_repeat``
    asks the plain questions again: the cost of a repeated question (LRU hit; the retrieval still runs)."""
    qs = sets["plain"]
    key = admin_key(work, store)
    started = time.perf_counter()
    proxy = start_proxy(work, store, upstream, work / f"proxy-{store}.log", scope, backend, client=upstream_client)
    startup_s = round(time.perf_counter() - started, 1)
    url = proxy.base_url
    try:
        with httpx.Client(headers={"authorization": f"Bearer {key}"}, timeout=60) as client:
            warm = sets["warm"][:40]
            for target in (upstream, url + "/v1"):
                time_requests(client, target + "/chat/completions", warm, stream=False)
                time_requests(client, target + "/chat/completions", warm, stream=True)
            out: dict[str, Any] = {"n_requests": len(qs), "backend": backend or "default", "startup_s": startup_s,
                                   "upstream_client": upstream_client or "direct"}
            for mode, stream in (("plain", False), ("stream_ttft", True), ("plain_repeat", False)):
                qs = sets["plain" if mode == "plain_repeat" else mode]
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
                both = [i["timings"].get("retrieve", 0) + i["timings"].get("scope", 0) for i in infos if i.get("timings")]
                out[mode]["server_retrieve_scope_p50_ms"] = pct(both, 0.5)
                out[mode]["server_retrieve_scope_p95_ms"] = pct(both, 0.95)
            out["proxy_rss_mb"] = rss_mb(proxy.pid)
            return out
    finally:
        proxy.stop()


# -- 2. load -------------------------------------------------------------------------------------------
def measure_load(work: Path, store: str, upstream: str, qs: list[tuple[str, str]], clients: int, duration: float,
                 scope: str = "similarity", backend: str | None = None, unique: bool = False,
                 workers: int = 1, load_client: str = "httpx") -> dict[str, Any]:
    """``clients`` concurrent clients for ``duration`` s. The questions cycle through ``qs`` (so after the first
    round the proxy's query LRU answers the embedding), or with ``unique`` each request's question is new (a
    serial number appended: every request embeds). ``workers`` > 1 serves the store's index from a ``chroma run``
    server over its folder (what workers need) with ``serve --workers``; CPU time then counts the server too."""
    if workers > 1:
        with chroma_process(work / "stores" / store / "chroma", log_path=work / f"chroma-{store}.log") as chroma:
            return _measure_load(work, store, upstream, qs, clients, duration, scope, backend, unique, workers, chroma,
                                 load_client)
    return _measure_load(work, store, upstream, qs, clients, duration, scope, backend, unique, 1, None, load_client)


def _measure_load(work: Path, store: str, upstream: str, qs: list[tuple[str, str]], clients: int, duration: float,
                  scope: str, backend: str | None, unique: bool, workers: int, chroma: Any,
                  load_client: str) -> dict[str, Any]:
    key = admin_key(work, store)
    proxy = start_proxy(work, store, upstream, work / f"proxy-{store}.log", scope, backend, workers=workers,
                        chroma_url=chroma.base_url if chroma else None)
    index_pid = chroma.pid if chroma else None
    url = proxy.base_url
    done: list[float] = []
    latencies: list[float] = []
    errors: dict[str, int] = {}
    per_second: dict[int, int] = {}

    async def worker(client: Any, offset: int, t0: float, deadline: float) -> None:
        conn = RawConnection(url, {"authorization": f"Bearer {key}"}) if load_client == "raw" else None
        for i in itertools.count(offset):
            if time.perf_counter() >= deadline:
                if conn is not None:
                    await conn.close()
                return
            text = qs[i % len(qs)][1] + (f" (#{offset}-{i})" if unique else "")
            body = {"model": "standin", "messages": [{"role": "user", "content": text}], "max_tokens": 8}
            started = time.perf_counter()
            try:
                if conn is not None:
                    status, raw = await conn.post("/v1/chat/completions", body)
                    ok = status == 200 and b'"choices"' in raw
                else:
                    r = await client.post(url + "/v1/chat/completions", json=body)
                    status, ok = r.status_code, r.status_code == 200
                kind = f"http {status}"
            except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
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
        cpu0, own0 = cpu_seconds(proxy.pid, index_pid), time.process_time()
        elapsed = asyncio.run(run())
        cpu1, own1 = cpu_seconds(proxy.pid, index_pid), time.process_time()
        rss = rss_mb(proxy.pid)
    finally:
        proxy.stop()
    n_err = sum(errors.values())
    return {"clients": clients, "scope": scope, "backend": backend or "default", "unique_questions": unique,
            "workers": workers, "index": "chroma server" if chroma else "embedded", "load_client": load_client,
            "load_generator_cpu_s": round(own1 - own0, 1),
            "proxy_rss_mb": rss, "duration_s": round(elapsed, 2),
            "proxy_cpu_s": round(cpu1 - cpu0, 1) if cpu0 is not None and cpu1 is not None else None,
            "per_proxy_cpu_s": round(len(done) / (cpu1 - cpu0), 1) if cpu0 is not None and cpu1 and cpu1 > cpu0 else None, "requests_ok": len(done), "errors": n_err,
            "error_kinds": errors, "per_s": round(len(done) / elapsed, 1), "p50_ms": pct(latencies, 0.5),
            "p95_ms": pct(latencies, 0.95), "p99_ms": pct(latencies, 0.99),
            "per_second": [per_second.get(s, 0) for s in range(int(elapsed) + 1)]}
