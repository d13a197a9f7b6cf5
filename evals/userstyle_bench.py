"""User-style scope benchmark, decision quality only (no answer generation, no model).

Every case's edits of ``evals/data/userstyle*.jsonl`` go into one memory (lifelong; a correction supersedes its
original because it states the same subject and relation); every probe goes through ``Editor.prepare_chat`` (the
whole retrieve + scope path, conversations as chat messages, no model call) once per scope checker. Reported per
checker: scope recall (the case's active edit applied to an in-scope probe) and specificity (no edit applied to an
out-of-scope probe), single-turn and for conversation follow-ups, and per probe type. With ``--anatomy`` the edits are
given as plain statements only (the anatomy step finds subject and relation) and supersede accuracy is measured: a
correction in other words must supersede the statement it corrects. End-to-end answers: ``agentedit eval --suite
userstyle``.

    python evals/userstyle_bench.py --checkers prefix-all similarity relation --run-name userstyle-after
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentedit.editor import Editor  # noqa: E402
from agentedit.evaluation.report import bar_plot, machine, md_table, write_json  # noqa: E402
from agentedit.evaluation.userstyle import edit_dict, read_records  # noqa: E402
from agentedit.memory import EditMemory, shared_embedder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("evals.userstyle_bench")
STUB_MODEL = "openai/not-called"  # prepare_chat never calls the model


class CachedEmbedder:
    """The shared embedder with a per-text cache: every checker sees the same queries, embedded once."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed(self, texts: list[str], *args: Any, **kwargs: Any) -> Any:
        import numpy as np

        texts = list(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            for t, v in zip(missing, self.inner.embed(missing, *args, **kwargs)):
                self.cache[t] = v
        if not texts:
            return self.inner.embed(texts, *args, **kwargs)
        return np.stack([self.cache[t] for t in texts])

    def embed_one(self, text: str) -> Any:
        return self.embed([text])[0]


def _ids(rec: dict[str, Any]) -> list[str]:
    return [f"{rec['id']}:{j}" for j in range(len(rec["edits"]))]


def _messages(probe: dict[str, Any]) -> list[dict[str, Any]]:
    return probe.get("messages") or [{"role": "user", "content": probe["prompt"]}]


def _ratio(hits: int, n: int) -> float | None:
    return round(hits / n, 4) if n else None


def _scores(checker: Any, mem: Any, prep: Any, probe: dict[str, Any], own: list[str]) -> tuple[str, bool, float, float]:
    """(turn, in scope, the own edit's relation score, the best score of any other candidate) for one probe; a
    candidate the checker gives no score (subject not named, vetoed) counts as -inf."""
    from agentedit.types import Candidate

    cands = [Candidate(mem.get(d.edit_id), d.similarity) for d in prep.decisions]
    query = prep.resolved_query or prep.query
    by_id = {c.record.id: (s if s is not None and s > -1.5 else float("-inf"))
             for c, (_, s) in zip(cands, checker.scores(query, cands))}
    mine = by_id.pop(own[-1], float("-inf")) if own else float("-inf")
    turn = "followup" if probe.get("messages") else "single"
    return turn, bool(probe["in_scope"]), mine, max(by_id.values(), default=float("-inf"))


def operating_points(scored: list[tuple[str, bool, float, float]], targets: tuple[float, ...] = (0.95, 0.98)) -> dict[str, Any]:
    """Single-turn recall at each target specificity, sweeping the relation threshold over these very probes (an upper
    bound for comparing checkers' scores at equal specificity, not a calibrated figure), with the follow-ups' figures
    at the same threshold. A probe is decided as the checker would at threshold t, without its cap on edits."""
    import numpy as np

    def rates(t: float, turn: str) -> tuple[float, float]:
        ins = [m >= t for tr, i, m, _ in scored if tr == turn and i]
        outs = [max(m, o) < t for tr, i, m, o in scored if tr == turn and not i]
        return float(np.mean(ins)) if ins else 0.0, float(np.mean(outs)) if outs else 1.0

    grid = sorted({round(v, 4) for _, _, m, o in scored for v in (m, o) if v > float("-inf")})
    out: dict[str, Any] = {}
    for target in targets:
        best = None
        for t in grid:
            rec, spec = rates(t, "single")
            if spec >= target and (best is None or rec > best[1]):
                best = (t, rec, spec)
        if best is not None:
            f_rec, f_spec = rates(best[0], "followup")
            out[f"{target:.2f}"] = {"threshold": best[0], "recall": round(best[1], 4), "specificity": round(best[2], 4),
                                    "followup_recall": round(f_rec, 4), "followup_specificity": round(f_spec, 4)}
    return out


def evaluate(records: list[dict[str, Any]], checkers: list[str], *, gold: bool, rows: list[dict[str, Any]],
             scope_model: str | None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="agentedit-userstyle-"))
    mem = EditMemory("userstyle", root=tmp, embedder=CachedEmbedder(shared_embedder()))  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    try:
        setup = Editor(STUB_MODEL, memory=mem, multihop="never", anatomy="rules")
        superseded = correct = 0
        for rec in records:  # in order: a correction comes after what it corrects
            for eid, e in zip(_ids(rec), rec["edits"]):
                setup.edit_record({**edit_dict(e, gold=gold), "id": eid})
            if len(rec["edits"]) > 1:
                first = mem.get(_ids(rec)[0])
                correct += 1
                superseded += first.status == "superseded"
        active = {r.id for r in mem.list()}
        for name in checkers:
            kw = {"scope_model": scope_model} if name == "trained" and scope_model else {}
            ed = Editor(STUB_MODEL, memory=mem, scope=name, multihop="never", **kw)
            stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            scored: list[tuple[str, bool, float, float]] = []
            t0, n_q = time.perf_counter(), 0
            for rec in records:
                own = [i for i in _ids(rec) if i in active]
                for p in rec["probes"]:
                    prep = ed.prepare_chat(_messages(p))
                    applied = prep.applied_ids
                    n_q += 1
                    if hasattr(ed.checker, "scores"):
                        scored.append(_scores(ed.checker, mem, prep, p, own))
                    ok = (bool(own) and own[-1] in applied) if p["in_scope"] else not applied
                    turn = "followup" if p.get("messages") else "single"
                    for key in (f"{turn}/{'in' if p['in_scope'] else 'out'}", f"type/{p['type']}", f"origin/{rec.get('origin')}/"
                                f"{'in' if p['in_scope'] else 'out'}"):
                        stats[key][0] += ok
                        stats[key][1] += 1
                    rows.append({"checker": name, "edits": "gold" if gold else "anatomy", "case": rec["id"], "probe": p["id"],
                                 "type": p["type"], "in_scope": p["in_scope"], "query": _messages(p)[-1]["content"],
                                 "own": own, "applied": applied, "ok": ok})
            res = {"recall": _ratio(*stats["single/in"]), "specificity": _ratio(*stats["single/out"]),
                   "followup_recall": _ratio(*stats["followup/in"]), "followup_specificity": _ratio(*stats["followup/out"]),
                   "n_single_in": stats["single/in"][1], "n_single_out": stats["single/out"][1],
                   "n_followup_in": stats["followup/in"][1], "n_followup_out": stats["followup/out"][1],
                   "ms_per_query": round((time.perf_counter() - t0) * 1000 / max(1, n_q), 2),
                   "by_type": {k[5:]: {"ok": v[0], "n": v[1], "rate": _ratio(*v)} for k, v in sorted(stats.items())
                               if k.startswith("type/")},
                   "by_origin": {k[7:]: {"ok": v[0], "n": v[1], "rate": _ratio(*v)} for k, v in sorted(stats.items())
                                 if k.startswith("origin/")}}
            if scored:
                res["operating_points"] = operating_points(scored)
            out[name] = res
            log.info("%s edits / %s: %s", "gold" if gold else "anatomy", name,
                     {k: v for k, v in res.items() if not k.startswith("by_")})
        return {"checkers": out, "supersede_accuracy": _ratio(superseded, correct), "n_corrections": correct,
                "n_active_edits": len(active)}
    finally:
        mem.close()
        shutil.rmtree(tmp, ignore_errors=True)


def composition(records: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = defaultdict(int)
    for rec in records:
        for p in rec["probes"]:
            counts[f"{rec.get('origin')}/{p['type']}/{'in' if p['in_scope'] else 'out'}"] += 1
    return {"cases": len(records), "edits": sum(len(r["edits"]) for r in records),
            "corrections": sum(len(r["edits"]) > 1 for r in records), "probes": dict(sorted(counts.items()))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkers", nargs="+", default=["prefix-all", "similarity", "relation"])
    ap.add_argument("--anatomy", action="store_true", help="also run with statement-only edits (anatomy step) and measure supersede accuracy")
    ap.add_argument("--run-name", default="userstyle")
    ap.add_argument("--data", help="folder of userstyle*.jsonl (default evals/data)")
    ap.add_argument("--scope-model", help="the trained checker's folder")
    ap.add_argument("--limit", type=int, help="first N cases only")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("LiteLLM", "httpx", "chromadb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    records = read_records(args.data)[: args.limit]
    out = ROOT / "evals" / "results" / args.run_name
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    rows: list[dict[str, Any]] = []
    runs = {"gold": evaluate(records, args.checkers, gold=True, rows=rows, scope_model=args.scope_model)}
    if args.anatomy:
        runs["anatomy"] = evaluate(records, args.checkers, gold=False, rows=rows, scope_model=args.scope_model)
    report = {"suite": "userstyle-decisions", "composition": composition(records), "runs": runs, "machine": machine(),
              "embedder": shared_embedder().name, "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
              "wall_s": round(time.time() - started, 1), "cases": "cases.jsonl"}
    write_json(out / "results.json", report)
    import json

    with open(out / "cases.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    lines = [f"# User-style scope decisions ({report['composition']['cases']} cases, "
             f"{sum(report['composition']['probes'].values())} probes)", "",
             f"Embedder {report['embedder']}; machine: {report['machine']}; wall {report['wall_s']} s. Decisions through "
             "`Editor.prepare_chat` (retrieve k=4 + scope check, no model call). Recall: the case's active edit applied to "
             "an in-scope probe; specificity: no edit applied to an out-of-scope probe. `gold`: edits carry their gold "
             "subject and prompt; `anatomy`: statements only.", ""]
    cols = ["checker", "recall", "specificity", "followup_recall", "followup_specificity", "n_single_in", "n_single_out",
            "n_followup_in", "n_followup_out", "ms_per_query"]
    for mode, res in runs.items():
        lines += [f"## edits: {mode}", "", f"Supersede accuracy (a correction in other words supersedes the original): "
                  f"{res['supersede_accuracy']} of {res['n_corrections']}.", "",
                  md_table([{"checker": k, **v} for k, v in res["checkers"].items()], cols), ""]
        points = [{"checker": k, "at specificity": t, **v} for k, c in res["checkers"].items()
                  for t, v in c.get("operating_points", {}).items()]
        if points:
            lines += ["Operating points: the relation threshold swept over these probes, the best single-turn recall "
                      "at each specificity (an upper bound for comparing checkers at equal specificity; the figures "
                      "above are at each checker's calibrated threshold).", "",
                      md_table(points, ["checker", "at specificity", "threshold", "recall", "specificity",
                                        "followup_recall", "followup_specificity"]), ""]
        types = sorted({t for v in res["checkers"].values() for t in v["by_type"]})
        lines += [md_table([{"type": t, **{k: f"{v['by_type'][t]['ok']}/{v['by_type'][t]['n']}" for k, v in res["checkers"].items()
                                          if t in v["by_type"]}} for t in types], ["type", *res["checkers"]]), ""]
        bar_plot(out / f"{mode}-scope.png", res["checkers"], ["recall", "specificity", "followup_recall", "followup_specificity"],
                 f"user-style scope decisions ({mode} edits)")
        lines += [f"![{mode}]({mode}-scope.png)", ""]
        print(f"\n{mode}\n" + md_table([{"checker": k, **v} for k, v in res["checkers"].items()], cols))
    lines += ["## composition", "", md_table([{"probes": k, "n": v} for k, v in report["composition"]["probes"].items()],
                                              ["probes", "n"]), ""]
    (out / "summary.md").write_text("\n".join(lines), "utf-8")


if __name__ == "__main__":
    main()
