"""Scope checkers side by side on the black-box benchmark's queries (no answer generation).

For the first N cases of counterfact-edit.json with all N edits in memory, every
query (prompt, rephrase = in scope for the case's edit; locality prompt = out of
scope) is retrieved (k=4) and checked by each checker. Reports recall (the
case's edit accepted), specificity (nothing accepted for locality queries),
precision (accepted edits that were the right one), model calls and ms/query.
The judge and cascade checkers ask the model (default: the embedded Qwen2.5-Coder-0.5B).

    python evals/scope_checkers.py --n 200
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evals._report import ROOT, bar_plot, data_dir, machine, md_table, write_json  # noqa: E402

from agentedit.backends import resolve_backend  # noqa: E402
from agentedit.memory import EditMemory, shared_embedder  # noqa: E402
from agentedit.scope import default_calibration, make_checker  # noqa: E402

log = logging.getLogger("evals.scope_checkers")


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--model", default="llamacpp:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--api-base")
    ap.add_argument("--checkers", nargs="+", default=["similarity", "relation", "cascade", "judge", "prefix-all"])
    ap.add_argument("--run-name", default="scope-checkers-counterfact")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("LiteLLM").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    out = ROOT / "evals" / "results" / args.run_name
    out.mkdir(parents=True, exist_ok=True)
    cases = json.loads((data_dir(args.data_dir) / "counterfact/counterfact-edit.json").read_text("utf-8"))[: args.n]
    tmp = Path(tempfile.mkdtemp(prefix="agentedit-scope-"))
    emb = shared_embedder()
    mem = EditMemory("scope", root=tmp, embedder=emb)
    mem.add_many([{"id": f"cf{c['case_id']}", "prompt": c["prompt"], "subject": c["subject"], "target_new": c["target_new"]}
                  for c in cases])
    backend = CountingBackend(resolve_backend(args.model, api_base=args.api_base, timeout=180))
    cal = default_calibration()
    queries = [(c, f, c[f]) for c in cases for f in ("prompt", "rephrase_prompt", "locality_prompt")]
    retrieved = {i: mem.query(q, k=4) for i, (_, _, q) in enumerate(queries)}
    results: dict[str, dict[str, Any]] = {}
    rows = []
    try:
        for name in args.checkers:
            checker = make_checker(name, calibration=cal, backend=backend, embedder=emb)
            calls0, t0 = backend.calls, time.perf_counter()
            tp = fp_local = accepted = right = 0
            for i, (case, field, q) in enumerate(queries):
                decisions = checker.check(q, retrieved[i])
                acc = [d.edit_id for d in decisions if d.in_scope]
                accepted += len(acc)
                own = f"cf{case['case_id']}"
                if field == "locality_prompt":
                    fp_local += bool(acc)
                else:
                    tp += own in acc
                right += own in acc and field != "locality_prompt"
                rows.append({"checker": name, "case_id": case["case_id"], "field": field, "query": q, "accepted": acc,
                             "decisions": [d.to_dict() for d in decisions]})
            n_in, n_out = 2 * len(cases), len(cases)
            results[name] = {"recall": round(tp / n_in, 4), "specificity": round(1 - fp_local / n_out, 4),
                             "precision": round(right / accepted, 4) if accepted else None,
                             "model_calls": backend.calls - calls0,
                             "ms_per_query": round((time.perf_counter() - t0) * 1000 / len(queries), 2)}
            log.info("%s: %s", name, results[name])
    finally:
        backend.close()
        mem.close()
        shutil.rmtree(tmp, ignore_errors=True)
    report = {"suite": "scope-checkers", "dataset": "counterfact-edit", "n_cases": len(cases), "n_queries": len(queries),
              "model": args.model, "embedder": emb.name, "k": 4, "machine": machine(), "calibration": cal.to_dict(),
              "methods": results, "cases": "cases.jsonl"}
    write_json(out / "results.json", report)
    with open(out / "cases.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    bar_plot(out / "scope.png", results, ["recall", "specificity", "precision"], f"Scope checkers, {len(cases)} CounterFact edits")
    table = md_table([{"checker": k, **v} for k, v in results.items()],
                     ["checker", "recall", "specificity", "precision", "model_calls", "ms_per_query"])
    (out / "summary.md").write_text(
        f"# Scope checkers on CounterFact ({len(cases)} edits in memory, {len(queries)} queries)\n\n"
        f"Judge model: {args.model}; embedder {emb.name}; k=4; machine: {report['machine']}.\n"
        "In scope: each case's prompt and rephrase (its own edit must be accepted). Out of scope: its locality prompt "
        "(nothing may be accepted).\n\n" + table + "\n\n![scope](scope.png)\n", "utf-8")
    print(table)


if __name__ == "__main__":
    main()
