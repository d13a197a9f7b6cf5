"""Corrections end to end (issue 17, item 4): after a correction in other words, does the model answer the newer fact?

Every user-style case with a correction (``evals/data/userstyle*.jsonl``: a statement, then a correction of the same
subject and relation in other words) is written as users write it, plain statements only, the anatomy step finding
subject and relation, all cases into one lifelong memory. Then each in-scope probe (question in other words, surname,
follow-up chat, joined question) goes through ``Editor.chat_answer`` with the embedded model. Reported: the share of
answers that contain the newer target, the share that contain the stale one, how many corrections superseded what
they correct at write time, and how many stale edits still reached the model. ``--gold`` writes the gold subject and
prompt with each statement instead (the scope check alone, without the anatomy step).

    python evals/corrections_bench.py --run-name corrections-session3 [--limit 20] [--model llamacpp:...]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentedit.editor import Editor  # noqa: E402
from agentedit.evaluation.report import bar_plot, machine, md_table, write_json  # noqa: E402
from agentedit.evaluation.scoring import gen_match  # noqa: E402
from agentedit.evaluation.userstyle import edit_dict, read_records  # noqa: E402
from agentedit.memory import EditMemory, shared_embedder  # noqa: E402
from agentedit.prompts import set_marker_secret  # noqa: E402
from agentedit.settings import env  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("evals.corrections_bench")


def _messages(probe: dict[str, Any]) -> list[dict[str, Any]]:
    return probe.get("messages") or [{"role": "user", "content": probe["prompt"]}]


def _max_tokens(probe: dict[str, Any], tokens: int) -> int:
    """A joined question asks two things: its answer gets room for both."""
    return 2 * tokens if probe["type"] == "joined" else tokens


def run(records: list[dict[str, Any]], *, model: str | None, gold: bool, rows: list[dict[str, Any]],
        tokens: int = 24) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="agentedit-corrections-"))
    try:
        mem = EditMemory("corrections", root=tmp, embedder=shared_embedder())
        ed = Editor(model, memory=mem, multihop="never") if model else Editor(memory=mem, multihop="never")
        ids: dict[str, list[str]] = {}
        for rec in records:  # every case's statements, in order: a correction comes after what it corrects
            ids[rec["id"]] = [ed.edit_record({**edit_dict(e, gold=gold), "id": f"{rec['id']}:{j}"}).id
                              for j, e in enumerate(rec["edits"])]
        counts: Counter[str] = Counter()
        for rec in (r for r in records if len(r["edits"]) > 1):
            old_id, new_id = ids[rec["id"]][0], ids[rec["id"]][-1]
            counts["corrections"] += 1
            counts["superseded"] += mem.get(old_id).status == "superseded"
            stale, new = rec["edits"][0]["target"], rec["edits"][-1]["target"]
            for p in (p for p in rec["probes"] if p["in_scope"]):
                t0 = time.perf_counter()
                ans = ed.chat_answer(_messages(p), max_tokens=_max_tokens(p, tokens), temperature=0.0)
                got_new, got_stale = gen_match(ans.text, [new]), gen_match(ans.text, [stale])
                counts["probes"] += 1
                counts["new"] += got_new
                counts["stale"] += got_stale
                counts["stale_injected"] += old_id in ans.applied
                counts["new_injected"] += new_id in ans.applied
                rows.append({"edits": "gold" if gold else "statements", "case": rec["id"], "probe": p["id"],
                             "type": p["type"], "query": _messages(p)[-1]["content"], "answer": ans.text,
                             "new_target": new, "stale_target": stale, "new": got_new, "stale": got_stale,
                             "applied": ans.applied, "ms": round((time.perf_counter() - t0) * 1000, 1)})
        ed.close()
        n = max(1, counts["probes"])
        return {"corrections": counts["corrections"], "superseded_at_write": counts["superseded"],
                "probes": counts["probes"], "newer_answers": round(counts["new"] / n, 4),
                "stale_answers": round(counts["stale"] / n, 4), "newer_injected": round(counts["new_injected"] / n, 4),
                "stale_injected": round(counts["stale_injected"] / n, 4)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-name", default="corrections")
    ap.add_argument("--model", default=None, help="model spec (default: the embedded local model)")
    ap.add_argument("--limit", type=int, default=None, help="first N correction cases only")
    ap.add_argument("--gold", action="store_true", help="also run with gold subject and prompt on each statement")
    ap.add_argument("--max-tokens", type=int, default=24, help="answer length (a joined question gets twice this)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # the facts block's marker from a fixed secret: the same requests in every run, so runs compare probe by probe
    set_marker_secret(env("AGENTEDIT_MARKER_SECRET") or "corrections-bench")
    records = read_records()
    corrections = [r for r in records if len(r["edits"]) > 1][: args.limit]
    keep = {r["id"] for r in corrections}
    # the other cases stay in memory (lifelong, as the users' store would hold them); only corrections are asked
    records = [r for r in records if r["id"] in keep or len(r["edits"]) == 1]
    out_dir = ROOT / "evals" / "results" / args.run_name
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    results = {"statements": run(records, model=args.model, gold=False, rows=rows, tokens=args.max_tokens)}
    log.info("statements: %s", results["statements"])
    if args.gold:
        results["gold"] = run(records, model=args.model, gold=True, rows=rows, tokens=args.max_tokens)
        log.info("gold: %s", results["gold"])
    wall = round(time.perf_counter() - started, 1)
    report = {"model": args.model or "embedded local model (llama.cpp, qwen2.5-coder-0.5b-instruct q4_k_m)",
              "max_tokens": args.max_tokens, "max_tokens_joined": 2 * args.max_tokens,
              "embedder": "all-MiniLM-L6-v2", "machine": machine(), "wall_s": wall, "results": results}
    write_json(out_dir / "results.json", report)
    write_json(out_dir / "rows.json", rows)
    table = [{"edits": k, **v} for k, v in results.items()]
    bar_plot(out_dir / "corrections.png", {k: v for k, v in results.items()}, ["newer_answers", "stale_answers",
                                                                               "stale_injected"], "corrections")
    (out_dir / "summary.md").write_text(
        f"# Corrections end to end ({results['statements']['corrections']} corrections, "
        f"{results['statements']['probes']} in-scope probes)\n\n"
        f"Model {report['model']}; embedder all-MiniLM-L6-v2; machine: {report['machine']}; wall {wall} s. Each case's "
        "statement and its correction in other words are written (statements only, unless `gold`), all cases in one "
        "memory; every in-scope probe is answered through `Editor.chat_answer` (greedy, "
        f"{args.max_tokens} tokens, twice that for a joined question; the facts marker from a fixed secret). `newer_answers`: "
        "answers containing the correction's target; `stale_answers`: containing the corrected one; `stale_injected`: "
        "the stale edit reached the model.\n\n"
        + md_table(table, ["edits", "corrections", "superseded_at_write", "probes", "newer_answers", "stale_answers",
                           "newer_injected", "stale_injected"])
        + "\n\n![corrections](corrections.png)\n", "utf-8")
    print(out_dir / "summary.md")


if __name__ == "__main__":
    main()
