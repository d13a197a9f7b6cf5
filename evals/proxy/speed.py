"""Import throughput (one batch into a fresh embedded store) and the embedder alone, per embedder backend."""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from .stores import bench_items, rss_mb

log = logging.getLogger("evals.proxy_bench")


def like_the_server(backend: str) -> None:
    """torch at one thread, as ``agentedit serve`` runs it (``--torch-threads 1``); ONNX Runtime as the embedder
    configures it (one thread per call, a batch's chunks on one thread per core)."""
    if backend == "torch":
        import torch

        torch.set_num_threads(1)


def measure_import(work: Path, size: int, cases: list[dict[str, Any]], backend: str, *, keep: bool = False) -> dict[str, Any]:
    """``size`` edits (:func:`~.stores.bench_items`) written by one ``add_many`` into a fresh store: edits/s, and how
    long the embedding alone took (timed around the embedder inside the same call). With ``keep``, and no
    ``bench-SIZE`` store built yet, the store written is kept as that bench store (the latency runs reuse it)."""
    from agentedit.memory import EditMemory, Embedder

    bench = work / "stores" / f"bench-{size}"
    keep = keep and not (bench / "BUILT").exists()
    root = work / "stores" if keep else work / f"import-{backend}-{size}"
    name = bench.name if keep else "imp"
    shutil.rmtree(root / name, ignore_errors=True)
    items = bench_items(size, cases)
    like_the_server(backend)
    embedder = Embedder(backend=backend)
    embedder.embed(["warm up"])
    spent = {"embed_s": 0.0}
    inner = embedder.embed

    def timed(texts: Any) -> np.ndarray:
        t = time.perf_counter()
        try:
            return inner(texts)
        finally:
            spent["embed_s"] += time.perf_counter() - t

    embedder.embed = timed  # type: ignore[method-assign]
    load = round(os.getloadavg()[0], 2)
    with EditMemory(name, root=root, embedder=embedder) as mem:
        t = time.perf_counter()
        mem.add_many(items, actor="bench")
        took = time.perf_counter() - t
        count = mem.count()
    if keep:
        (bench / "BUILT").write_text(json.dumps({"edits": size, "active": count, "added_this_run": size,
                                                 "build_s": round(took, 1), "edits_per_s": round(size / took, 1),
                                                 "resumed_at": 0, "embedder_backend": backend, "batches": 1}))
    else:
        shutil.rmtree(root, ignore_errors=True)
    out = {"backend": backend, "batch": size, "stored": count, "seconds": round(took, 1),
           "edits_per_s": round(size / took, 1), "embed_s": round(spent["embed_s"], 1),
           "embed_texts_per_s": round(size / spent["embed_s"], 1) if spent["embed_s"] else None,
           "rest_s": round(took - spent["embed_s"], 1), "load_avg_1m_at_start": load,
           "bench_rss_mb": rss_mb(os.getpid())}
    log.info("import: %s", out)
    return out


def measure_embedder(cases: list[dict[str, Any]], backends: list[str], n: int = 300) -> dict[str, Any]:
    """Per backend, in this process: p50 ms of one question (no LRU: ``embed``), and texts/s for a 256-text batch;
    plus the smallest cosine between the backends' vectors of the same questions."""
    from agentedit.memory import Embedder

    texts = [c["rephrase_prompt"] for c in cases[:n]]
    out: dict[str, Any] = {"questions": len(texts), "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    vecs = {}
    for backend in backends:
        like_the_server(backend)
        emb = Embedder(backend=backend)
        emb.embed(texts[:8])
        singles = []
        for text in texts:
            t = time.perf_counter()
            emb.embed([text])
            singles.append((time.perf_counter() - t) * 1000)
        batch = [c["locality_prompt"] for c in cases[:256]]
        t = time.perf_counter()
        vecs[backend] = emb.embed(texts)
        emb.embed(batch)
        out[backend] = {"single_p50_ms": round(statistics.median(singles), 3),
                        "single_p95_ms": round(sorted(singles)[int(0.95 * len(singles))], 3),
                        "batch_texts_per_s": round((len(texts) + len(batch)) / (time.perf_counter() - t), 1)}
    if len(vecs) == 2:
        a, b = vecs.values()
        out["min_cosine_between_backends"] = round(float((a * b).sum(axis=1).min()), 7)
    log.info("embedder: %s", out)
    return out


def measure_prepare(work: Path, store: str, sets: dict[str, list[tuple[str, str]]], scope: str,
                    backend: str) -> dict[str, Any]:
    """In this process, over ``store``: ``Editor.prepare_chat`` (the direct single pass) against the same workflow
    through LangGraph's compiled graph, alternating per question so both see the same machine; a fresh question set
    per path (the query LRU never answers). Also the p50 of retrieve+scope as the workflow reports them."""
    from agentedit.editor import Editor
    from agentedit.memory import Embedder
    from agentedit.settings import Settings

    settings = Settings.from_env("openai/standin").replace(store=store, store_dir=str(work / "stores"), scope=scope,
                                                           multihop="never")
    import agentedit.memory.store as store_module

    like_the_server(backend)
    editor = Editor(settings=settings, memory=store_module.EditMemory(store, root=work / "stores",
                                                                      embedder=Embedder(backend=backend)))
    try:
        editor.warm()
        for _, text in sets["warm"][:20]:
            editor.prepare_chat([{"role": "user", "content": text}])
        direct, graph, steps = [], [], []
        for (_, a), (_, b) in zip(sets["plain"], sets["stream_ttft"]):
            t = time.perf_counter()
            p = editor.prepare_chat([{"role": "user", "content": a}])
            direct.append((time.perf_counter() - t) * 1000)
            steps.append(p.timings.get("retrieve", 0) + p.timings.get("scope", 0))
            state = editor._state(messages=[{"role": "user", "content": b}], prompt=None, namespace=None, style="chat",
                                  params={})
            t = time.perf_counter()
            editor.workflow._prepare.invoke(state, context=editor._context())
            graph.append((time.perf_counter() - t) * 1000)
    finally:
        editor.close()
    out = {"backend": backend, "questions": len(direct), "direct_p50_ms": round(statistics.median(direct), 3),
           "langgraph_p50_ms": round(statistics.median(graph), 3),
           "retrieve_scope_p50_ms": round(statistics.median(steps), 3),
           "load_avg_1m": round(os.getloadavg()[0], 2)}
    log.info("prepare in-process: %s", out)
    return out
