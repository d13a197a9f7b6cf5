"""Applying each method to the cases and measuring it: seconds per edit, peak memory, and (real models)
teacher-forced reliability, generality and locality."""

from __future__ import annotations

import argparse
import logging
import resource
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("whitebox_bench")
SEQUENTIAL = ("alphaedit", "grace", "wise")  # applied one after another and scored once all are in
CHECKPOINTS = (1, 10, 100, 1000, 10000)  # query time is measured after this many edits


class Meter:
    """Peak memory of one method: CUDA's peak allocated, or on a CPU the process's peak resident set (VmHWM), which
    Linux lets a process reset (``/proc/self/clear_refs``); elsewhere it is the peak since the process started."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.per_method = True

    def reset(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.per_method = False

    def peak_gb(self) -> float:
        if self.cuda:
            import torch

            return round(torch.cuda.max_memory_allocated() / 2**30, 3)
        if self.per_method:
            try:
                for line in Path("/proc/self/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        return round(int(line.split()[1]) / 2**20, 3)
            except OSError:
                pass
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)


def probe_pairs(case: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, prefix, continuation) per probe; locality continues with the true answer."""
    out = []
    for p in case["probes"]:
        if p["kind"] in ("reliability", "generality"):
            out.append((p["kind"], p["prompt"], case["target"]))
        elif p["kind"] == "locality" and p["targets"]:
            out.append(("locality", p["prompt"], p["targets"][0]))
    return out


def score_cases(backend: Any, cases: list[dict[str, Any]], reference: dict[tuple[str, int], list[int]] | None) -> list[dict[str, Any]]:
    jobs = [(c, i, kind, pre, cont) for c in cases for i, (kind, pre, cont) in enumerate(probe_pairs(c))]
    scores = backend.score([(pre, cont) for _, _, _, pre, cont in jobs])
    rows = []
    for (case, i, kind, pre, cont), s in zip(jobs, scores):
        if kind == "locality":
            ref = reference.get((case["id"], i)) if reference is not None else s.top1
            value = sum(int(a == b) for a, b in zip(s.top1, ref)) / len(ref) if ref else 0.0
        else:
            value = s.accuracy
        rows.append({"case_id": case["id"], "probe_idx": i, "kind": kind, "prompt": pre, "target": cont,
                     "score": round(value, 4), "top1": s.top1})
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind in ("reliability", "generality", "locality"):
        mine = [r["score"] for r in rows if r["kind"] == kind]
        if mine:
            out[kind] = round(sum(mine) / len(mine), 4)
    return out


def run_method(name: str, ctx: Any, cases: list[dict[str, Any]], args: argparse.Namespace, meter: Meter,
               reference: dict[tuple[str, int], list[int]] | None, quality: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from agentedit.parametric import EditRequest, make_method

    editor = make_method(name, ctx, editor_configs(args)[name])
    reqs = [EditRequest.make(c["prompt"], c["subject"], c["target"], id=c["id"]) for c in cases]
    rows: list[dict[str, Any]] = []
    edit_s, done = 0.0, 0
    query_ms: dict[str, float] = {}
    deadline = time.perf_counter() + args.method_budget_s
    meter.reset()
    if name == "memit":
        logger.info("memit: one batch of %d edits", len(reqs))
        t = time.perf_counter()
        delta = editor.apply(reqs)
        edit_s, done = time.perf_counter() - t, len(reqs)
        if quality:
            rows = score_cases(ctx.backend, cases, reference)
        editor.revert(delta)
    elif name in SEQUENTIAL:  # lifelong: one after another, scored when all are in
        deltas = []
        for req in reqs:
            if time.perf_counter() > deadline:
                break
            t = time.perf_counter()
            deltas.append(editor.apply([req]))
            edit_s, done = edit_s + time.perf_counter() - t, done + 1
            _progress(name, done, len(reqs), edit_s)
            if done in CHECKPOINTS or done == len(reqs):
                query_ms[str(done)] = query_time(ctx.backend, cases)
        if quality:
            rows = score_cases(ctx.backend, cases[:done], reference)
        for d in reversed(deltas):
            editor.revert(d)
    else:  # single: edit, score, revert
        for case, req in zip(cases, reqs):
            if time.perf_counter() > deadline:
                break
            t = time.perf_counter()
            delta = editor.apply([req])
            edit_s, done = edit_s + time.perf_counter() - t, done + 1
            _progress(name, done, len(reqs), edit_s)
            if quality:
                rows += score_cases(ctx.backend, [case], reference)
            editor.revert(delta)
    protocol = f"batch of {done}" if name == "memit" else f"{done} sequential" if name in SEQUENTIAL else \
        "single (edit, score, revert)"
    res = {"protocol": protocol, "n_edits": done, "seconds_per_edit": round(edit_s / max(done, 1), 3),
           "edit_s_total": round(edit_s, 2), "peak_memory_gb": meter.peak_gb(), **summarise(rows)}
    if query_ms:  # ms per query with this many edits in the model (the unedited model's figure is the report's)
        res["query_ms_by_edits"] = query_ms
    if done < len(cases):
        res["note"] = f"stopped after {done} of {len(cases)} edits (--method-budget-s {args.method_budget_s:g})"
    logger.info("%s: %s", name, res)
    return res, [{**r, "method": name} for r in rows]


def query_time(backend: Any, cases: list[dict[str, Any]], n: int = 8, repeats: int = 3) -> float:
    """Milliseconds per query: one teacher-forced pass over a case's prompt and target, the best of ``repeats``
    timings of ``n`` such queries one at a time (a query is what a served request costs before generation)."""
    pairs = [(c["prompt"], c["target"]) for c in cases[:n]]
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for pair in pairs:
            backend.score([pair])
        best = min(best, time.perf_counter() - t)
    return round(best * 1000 / max(len(pairs), 1), 2)


def _progress(name: str, done: int, total: int, edit_s: float) -> None:
    if done % 10 == 0 or done == total:
        logger.info("%s: %d/%d edits, %.1f s per edit so far", name, done, total, edit_s / done)


def editor_configs(args: argparse.Namespace) -> dict[str, Any]:
    """The methods' defaults, with the target search shortened where the command line asks."""
    from agentedit.parametric import (AlphaEditConfig, FTConfig, GRACEConfig, MEMITConfig, ROMEConfig, TargetConfig,
                                      WISEConfig)

    def target() -> TargetConfig:
        return TargetConfig(steps=args.steps, n_contexts=args.contexts)

    return {"rome": ROMEConfig(target=target()), "memit": MEMITConfig(target=target()), "ft": FTConfig(steps=args.ft_steps),
            "alphaedit": AlphaEditConfig(target=target()),
            "grace": GRACEConfig(**({"steps": args.adapter_steps} if args.adapter_steps else {})),
            "wise": WISEConfig(**({"steps": args.adapter_steps} if args.adapter_steps else {}))}


def layers_of(editor: Any) -> tuple[int, ...]:
    """The layers a method edits (its statistics are computed for these, before any edit is timed)."""
    cfg = editor.config
    if hasattr(editor, "adapter"):  # GRACE, WISE: no key statistics
        return ()
    if hasattr(editor, "layers") and callable(editor.layers):
        return editor.layers()
    layout = editor.ctx.layout
    if getattr(cfg, "layer", None) is not None:
        return (cfg.layer,)
    if getattr(cfg, "layers", None):
        return tuple(cfg.layers)
    return layout.default_layers(1)
