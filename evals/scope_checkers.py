"""Scope checkers side by side, decision quality only (no answer generation).

For each dataset, the first N cases' edits are all in memory; every probe is
retrieved (k=4) and checked by each checker. In scope: reliability and
generality probes (and wiki_counterfact's Subject_Aliasing probes) — the case's
own edit must be accepted. Out of scope: locality probes — nothing may be
accepted (wiki_counterfact: Relation_Specificity only; its Forgetfulness probes ask the edited
relation itself and are left out, as are locality probes whose true answer is the edit's old
answer about the edit's own subject: they ask the edited fact again, which happens in KnowEdit's ZsRE). Reports recall, specificity, precision, model calls and ms/query.
The judge and cascade checkers ask the model (default: embedded Qwen2.5-Coder-0.5B);
``--judge-n`` limits them to the first cases because each judgement is a model call.

    python evals/scope_checkers.py --datasets counterfact-edit zsre wiki_counterfact --n 200 --judge-n 40
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentedit.backends import resolve_backend  # noqa: E402
from agentedit.evaluation.loaders import load_dataset  # noqa: E402
from agentedit.evaluation.scoring import normalise  # noqa: E402
from agentedit.evaluation.report import bar_plot, machine, md_table, roc_plot, write_json  # noqa: E402
from agentedit.memory import EditMemory, shared_embedder  # noqa: E402
from agentedit.scope import choose_threshold, default_calibration, make_checker  # noqa: E402
from agentedit.scope.calibration import auc  # noqa: E402
from agentedit.scope.text import find_subject  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("evals.scope_checkers")
MODEL_CHECKERS = ("judge", "cascade")
SCORED_CHECKERS = ("similarity", "relation", "trained", "sentinel")  # checkers with a continuous score: ROC and recall at 98% specificity
FLOOR = -1.0  # score of a query that cannot accept the edit at any threshold (subject not named, edit not retrieved)


def query_score(name: str, checker: Any, query: str, cands: list[Any], own: str, label: bool) -> float:
    """The score a threshold is compared with: the own edit's for in-scope queries, the best candidate's otherwise."""
    if name == "similarity":
        per = [(c.record.id, c.similarity) for c in cands]
    else:
        per = [(c.record.id, s if s is not None else FLOOR) for c, (_, s) in zip(cands, checker.scores(query, cands))]
    if label:
        return max([s for eid, s in per if eid == own], default=FLOOR)
    return max([s for _, s in per], default=FLOOR)


def roc(pos: np.ndarray, neg: np.ndarray) -> dict[str, Any]:
    """AUC, recall at >= 98% specificity (threshold chosen on these very scores: an upper bound), and the curve."""
    t98 = choose_threshold(pos, neg, "recall@specificity", 0.98)
    ts = np.unique(np.concatenate([pos, neg, [np.inf]]))[::-1]
    tpr = [float(np.mean(pos >= t)) for t in ts]
    fpr = [float(np.mean(neg >= t)) for t in ts]
    return {"auc": round(auc(pos, neg), 4), "recall_at_98_spec": round(float(np.mean(pos >= t98)), 4),
            "threshold_at_98_spec": round(float(t98), 4), "curve": {"fpr": fpr, "tpr": tpr}}


class CountingBackend:
    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.capabilities, self.calls = inner, inner.name, inner.capabilities, 0

    def chat(self, messages: Any, **params: Any) -> Any:
        self.calls += 1
        return self.inner.chat(messages, **params)

    async def achat(self, messages: Any, **params: Any) -> Any:
        self.calls += 1
        return await self.inner.achat(messages, **params)

    def close(self) -> None:
        self.inner.close()


def asks_edited_relation(probe: Any, case: Any) -> bool:
    """A locality probe about the edit's subject whose true answer is the edit's old answer asks the edited fact.

    KnowEdit's ZsRE builds its locality probes from the subject's other Wikidata facts, and some of them
    turn out to be the edited fact again ("The mother of Mallory Reaves is" for the edit "The mother of
    Mallory Reaves is whom?"): the edit bears on them, so they are not out of scope.
    """
    if probe.kind != "locality" or not case.edits or not case.edits[0].get("subject"):
        return False
    edit = case.edits[0]
    old = edit.get("target_old")
    olds = {normalise(o) for o in ([old] if isinstance(old, str) else (old or [])) if o}
    # The same subject too: CounterFact's locality probes share relation and answer with the edit on purpose,
    # about another subject ("Michel Rocard is a native speaker of" French), and stay out of scope.
    return any(normalise(t) in olds for t in probe.targets if t) and find_subject(probe.prompt, [edit["subject"]]) is not None


def in_scope(probe: Any, case: Any = None) -> bool | None:
    if probe.kind in ("reliability", "generality"):
        return True
    if probe.kind == "portability" and probe.subkind == "Subject_Aliasing":
        return True
    if probe.kind == "locality" and probe.subkind == "Forgetfulness":
        # wiki_counterfact's Forgetfulness probes ask the edited relation itself ("The occupation of X, which is not
        # <new target>, is"): the edit bears on them, so they are neither in nor out of scope for this count.
        return None
    if probe.kind == "locality" and case is not None and asks_edited_relation(probe, case):
        return None
    if probe.kind == "locality":
        return False
    return None  # portability reasoning etc.: the edit may or may not be the right context; not scored here


def evaluate(dataset: str, args: argparse.Namespace, backend: CountingBackend, rows: list[dict[str, Any]]) -> dict[str, Any]:
    cases = load_dataset(dataset, args.data_dir, limit=args.n)
    tmp = Path(tempfile.mkdtemp(prefix="agentedit-scope-"))
    emb = shared_embedder()
    mem = EditMemory("scope", root=tmp, embedder=emb)
    ids = {}
    edits = []
    for c in cases:
        eid = f"c{c.case_id}"
        ids[c.case_id] = eid
        edits.append({**{k: v for k, v in c.edits[0].items() if v is not None}, "id": eid})
    mem.add_many(edits)
    active = {r.id for r in mem.list()}  # identical subject+relation edits supersede each other
    queries = [(c, p, in_scope(p, c)) for c in cases for p in c.probes if in_scope(p, c) is not None and ids[c.case_id] in active]
    n_same_relation = sum(asks_edited_relation(p, c) and p.subkind != "Forgetfulness" for c in cases for p in c.probes)
    retrieved = [mem.query(p.prompt, k=4) for _, p, _ in queries]
    cal = default_calibration()
    results: dict[str, Any] = {}
    try:
        for name in args.checkers:
            checker = make_checker(name, calibration=cal, backend=backend, embedder=emb, model_dir=args.scope_model)
            limit_cases = {c.case_id for c in cases[: args.judge_n]} if name in MODEL_CHECKERS else None
            calls0, check_s = backend.calls, 0.0
            tp = n_in = fp = n_out = accepted = right = 0
            pos_scores: list[float] = []
            neg_scores: list[float] = []
            for (case, probe, label), cands in zip(queries, retrieved):
                if limit_cases is not None and case.case_id not in limit_cases:
                    continue
                tc = time.perf_counter()
                acc = [d.edit_id for d in checker.check(probe.prompt, cands) if d.in_scope]
                check_s += time.perf_counter() - tc
                if name in SCORED_CHECKERS:
                    score = query_score(name, checker, probe.prompt, cands, ids[case.case_id], label)
                    (pos_scores if label else neg_scores).append(score)
                own = ids[case.case_id]
                accepted += len(acc)
                if label:
                    n_in += 1
                    tp += own in acc
                    right += own in acc
                else:
                    n_out += 1
                    fp += bool(acc)
                rows.append({"dataset": dataset, "checker": name, "case_id": case.case_id, "kind": probe.kind,
                             "subkind": probe.subkind, "in_scope": label, "query": probe.prompt, "accepted": acc})
            n_q = n_in + n_out
            results[name] = {"recall": round(tp / n_in, 4) if n_in else None,
                             "specificity": round(1 - fp / n_out, 4) if n_out else None,
                             "precision": round(right / accepted, 4) if accepted else None,
                             "n_in_scope": n_in, "n_out_of_scope": n_out, "model_calls": backend.calls - calls0,
                             "ms_per_query": round(check_s * 1000 / max(1, n_q), 2)}
            if pos_scores and neg_scores:
                results[name].update(roc(np.asarray(pos_scores), np.asarray(neg_scores)))
            log.info("%s / %s: %s", dataset, name, results[name])
    finally:
        mem.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"n_cases": len(cases), "n_queries": len(queries), "n_locality_asking_edited_relation": n_same_relation,
            "checkers": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir")
    ap.add_argument("--datasets", nargs="+", default=["counterfact-edit", "zsre", "wiki_counterfact"])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--judge-n", type=int, default=40, help="cases per dataset for the checkers that call the model")
    ap.add_argument("--model", default="llamacpp:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--api-base")
    ap.add_argument("--checkers", nargs="+", default=["prefix-all", "similarity", "relation", "judge", "cascade"],
                    help="also: trained (`agentedit train-scope`), sentinel (RECIPE's knowledge sentinel, "
                         "`agentedit train-recipe`; read from the --scope-model folder's store, <store>/recipe)")
    ap.add_argument("--run-name", default="scope-checkers")
    ap.add_argument("--keep-other-datasets", action="store_true",
                    help="merge into an earlier run of this name: datasets not rerun keep their figures and rows")
    ap.add_argument("--scope-model", default=str(ROOT / "stores" / "default" / "scope-model"),
                    help="trained checker's folder (written by `agentedit train-scope`)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("LiteLLM", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    out = ROOT / "evals" / "results" / args.run_name
    out.mkdir(parents=True, exist_ok=True)
    backend = CountingBackend(resolve_backend(args.model, api_base=args.api_base, timeout=180))
    rows: list[dict[str, Any]] = []
    started = time.time()
    try:
        per = {ds: evaluate(ds, args, backend, rows) for ds in args.datasets}
    finally:
        backend.close()
    earlier = out / "results.json"
    if args.keep_other_datasets and earlier.exists():  # rerun some datasets, keep the others' figures and rows
        kept = {k: v for k, v in json.loads(earlier.read_text("utf-8"))["datasets"].items() if k not in per}
        with open(out / "cases.jsonl", encoding="utf-8") as fh:
            rows = [r for line in fh if (r := json.loads(line))["dataset"] in kept] + rows
        per = {**kept, **per}
    cal = default_calibration()
    report = {"suite": "scope-checkers", "datasets": per, "n_cases_per_dataset": args.n, "judge_cases_per_dataset": args.judge_n,
              "judge_model": args.model, "embedder": shared_embedder().name, "k": 4, "machine": machine(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)), "wall_s": round(time.time() - started, 1),
              "calibration": cal.to_dict(), "cases": "cases.jsonl"}
    write_json(out / "results.json", report)
    with open(out / "cases.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    lines = [f"# Scope checkers: decision quality ({args.n} cases per dataset; judge/cascade on the first {args.judge_n})", "",
             f"Judge model {args.model}; embedder {report['embedder']}; k=4; machine: {report['machine']}; "
             f"calibration: similarity threshold {cal.threshold:.3f}, relation threshold {cal.relation_threshold:.3f}, "
             f"cascade band [{cal.band_low:.3f}, {cal.band_high:.3f}) from {cal.data}.", "",
             "In scope: reliability and generality probes (plus wiki_counterfact Subject_Aliasing): the case's own edit must be "
             "accepted. Out of scope: locality probes: nothing may be accepted (wiki_counterfact: Relation_Specificity only; Forgetfulness probes ask the edited relation itself and are not counted, nor are locality probes naming the edit's subject whose true answer is the edit's old answer, which ask the edited fact again; their number per dataset is given below). `recall`, `specificity` and `precision` are at "
             "the calibrated thresholds (chosen on counterfact-train); `recall_at_98_spec` is the best recall of the checker's "
             "score at >= 98% specificity with the threshold chosen on these very queries (an upper bound, for comparing "
             "scores), and `auc` the area under its ROC. Scores: similarity of the own edit (best candidate for out-of-scope "
             "queries); relation similarity or trained probability with the subject gate (a query that does not name the "
             "subject scores -1).", ""]
    for ds, res in per.items():
        table = md_table([{"checker": k, **{m: v.get(m) for m in v if m != "curve"}} for k, v in res["checkers"].items()],
                         ["checker", "recall", "specificity", "precision", "recall_at_98_spec", "auc", "n_in_scope",
                          "n_out_of_scope", "model_calls", "ms_per_query"])
        plot = f"{ds}-scope.png"
        bar_plot(out / plot, res["checkers"], ["recall", "specificity", "precision"], f"{ds}: scope decisions")
        curves = {k: (v["curve"]["fpr"], v["curve"]["tpr"]) for k, v in res["checkers"].items() if "curve" in v}
        lines += [f"## {ds}", "", f"{res['n_locality_asking_edited_relation']} locality probe(s) naming the edit's subject whose true "
                  "answer is the edit's old answer were left out of the out-of-scope count (Forgetfulness probes not included).", "",
                  table, "", f"![{ds}]({plot})", ""]
        if curves:
            roc_plot(out / f"{ds}-roc.png", curves, f"{ds}: scope ROC")
            lines += [f"![{ds} ROC]({ds}-roc.png)", ""]
        print(f"\n{ds}\n{table}")
    (out / "summary.md").write_text("\n".join(lines), "utf-8")


if __name__ == "__main__":
    main()
