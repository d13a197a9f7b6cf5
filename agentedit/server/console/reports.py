"""``/ui/api/reports``: the eval runs under ``evals/results/`` (their Markdown tables, plots and results.json), and
``/ui/api/metrics``: a summary of the server's own Prometheus metrics (admin keys).

A run is a folder directly under the results folder; only its own ``.md``, ``.png`` and ``results.json`` files are
served, by name (no path leaves the folder). The metrics summary reads this app's registry: requests by route and
status class, chats and the share answered with at least one edit, latency quantiles from the histograms.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from ..access import Principal, require
from ..auth import ALL_NAMESPACES
from ..errors import ApiError

router = APIRouter(prefix="/ui/api", tags=["console"], include_in_schema=False)

SERVED = (".md", ".png", ".json")
MAX_TEXT = 400_000  # bytes of one Markdown or results.json shown inline


def _root(request: Request) -> Path:
    return request.app.state.console.results_dir


def _runs(root: Path) -> list[dict[str, Any]]:
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        if not d.is_dir() or d.name.startswith("."):
            continue
        files = sorted(f.name for f in d.iterdir() if f.is_file() and f.suffix in SERVED)
        if files:
            out.append({"name": d.name, "modified": d.stat().st_mtime, "files": files})
    return sorted(out, key=lambda r: r["name"])


def _run_dir(request: Request, name: str) -> Path:
    root = _root(request)
    if name not in {r["name"] for r in _runs(root)}:
        raise ApiError(404, f"no eval run {name[:80]!r} under the results folder", code="not_found")
    return root / name


@router.get("/reports")
def list_runs(request: Request, who: Principal = require("query")) -> dict[str, Any]:
    return {"folder": str(_root(request)), "data": _runs(_root(request))}


@router.get("/reports/{name}")
def run(name: str, request: Request, who: Principal = require("query")) -> dict[str, Any]:
    d = _run_dir(request, name)
    md = {f.name: f.read_text("utf-8", errors="replace")[:MAX_TEXT] for f in sorted(d.glob("*.md"))}
    results: Any = None
    res = d / "results.json"
    if res.is_file() and res.stat().st_size <= MAX_TEXT:
        try:
            results = json.loads(res.read_text("utf-8"))
        except ValueError:
            results = None
    return {"name": name, "markdown": md, "plots": sorted(f.name for f in d.glob("*.png")), "results": results,
            "results_too_big": res.is_file() and results is None}


@router.get("/reports/{name}/files/{filename}")
def run_file(name: str, filename: str, request: Request, who: Principal = require("query")) -> FileResponse:
    d = _run_dir(request, name)
    if filename not in {f.name for f in d.iterdir() if f.is_file() and f.suffix in SERVED}:
        raise ApiError(404, f"no file {filename[:80]!r} in eval run {name!r}", code="not_found")
    return FileResponse(d / filename)


def _families(request: Request) -> dict[str, Any]:
    return {f.name: f for f in request.app.state.agentedit.metrics.registry.collect()}


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The ``q`` quantile from cumulative histogram buckets ``[(upper bound, count)]``, interpolated in a bucket."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank, lower, below = q * buckets[-1][1], 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            share = (rank - below) / (count - below) if count > below else 1.0
            return lower + (bound - lower) * share
        lower, below = bound, count
    return lower


def _histogram(family: Any, match: dict[str, str] | None = None) -> dict[str, Any]:
    def ok(labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in (match or {}).items())

    buckets: dict[float, float] = {}
    count = total = 0.0
    for s in family.samples:
        if not ok(s.labels):
            continue
        if s.name.endswith("_bucket"):
            bound = float(s.labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + s.value
        elif s.name.endswith("_count"):
            count += s.value
        elif s.name.endswith("_sum"):
            total += s.value
    ordered = sorted(buckets.items())
    p50, p95 = quantile(ordered, 0.5), quantile(ordered, 0.95)
    ms = (lambda v: None if v is None else round(v * 1000.0, 2))
    return {"count": int(count), "mean_ms": ms(total / count) if count else None, "p50_ms": ms(p50), "p95_ms": ms(p95)}


@router.get("/metrics")
def metrics_summary(request: Request, who: Principal = require("admin")) -> dict[str, Any]:
    """Requests, applied-edit rate and latency since the server started (the namespaces this key may use)."""
    fam = _families(request)
    routes: dict[str, dict[str, int]] = {}
    for s in fam["agentedit_http_requests"].samples:
        if s.name.endswith("_total"):
            cls = s.labels["status"][0] + "xx"
            row = routes.setdefault(s.labels["route"], {"requests": 0})
            row["requests"] += int(s.value)
            row[cls] = row.get(cls, 0) + int(s.value)
    latency = {route: _histogram(fam["agentedit_http_request_seconds"], {"route": route}) for route in routes}
    chats = sum(int(s.value) for s in fam["agentedit_chat_completions"].samples if s.name.endswith("_total"))
    applied = sum(int(s.value) for s in fam["agentedit_edits_applied"].samples if s.name.endswith("_total"))
    st = request.app.state.agentedit
    visible = None if who.key is None or ALL_NAMESPACES in who.key.namespaces else list(who.key.namespaces)
    per_ns = request.app.state.console.recent.counts(visible)
    for row in per_ns.values():
        row["applied_rate"] = round(row["with_edits"] / row["chats"], 4) if row["chats"] else None
    active = {ns: n for ns, n in st.active_edits().items() if visible is None or ns in visible}
    return {"uptime_s": round(time.time() - st.started), "started": st.started,
            "requests": {"total": sum(r["requests"] for r in routes.values()),
                         "routes": [{"route": k, **v, **latency[k]} for k, v in sorted(routes.items())]},
            "chats": {"total": chats, "edits_applied": applied, "namespaces": per_ns},
            "latency": {"prepare": _histogram(fam["agentedit_prepare_seconds"]),
                        "upstream": _histogram(fam["agentedit_upstream_seconds"])},
            "auth_failures": sum(int(s.value) for s in fam["agentedit_auth_failures"].samples if s.name.endswith("_total")),
            "active_edits": active}
