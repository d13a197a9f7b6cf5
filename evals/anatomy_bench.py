"""Statement anatomy benchmark: how often a parser finds the right subject and target of a hand-written fact.

Reads ``evals/data/statements.jsonl`` (one object per line: ``statement``, ``subject``, ``target``, ``shape``;
written by hand, never taken from an evaluation set) and scores two parsers side by side:

- ``old``: the regular-expression rules as they were before issue 17 (on the raw statement, no screening);
- ``new``: :func:`agentedit.anatomy.parse_statement` (screening, then the spaCy parser, then the rules; with
  ``--model`` a llama.cpp / API model is asked first).

A statement counts as right when both subject and target match after normalisation (case, surrounding punctuation,
a leading article and a trailing possessive ``'s`` ignored). Writes ``results.json``, ``summary.md`` and
``accuracy.png`` (per shape, old vs new) under ``--out``.

    python -m evals.anatomy_bench [--data evals/data/statements.jsonl] [--out evals/results/anatomy]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from agentedit.anatomy import NoFactError, parse_statement
from agentedit.anatomy.rules import split

logger = logging.getLogger("anatomy_bench")
ROOT = Path(__file__).resolve().parents[1]


def same_subject(got: str | None, want: str) -> bool:
    """The subject is right when it normalises to the label, or one is the other's proper core ("river Elsk" and
    "Elsk"): the scope check matches a subject by both spellings, so the two parses decide the same."""
    from agentedit.scope.text import proper_core

    if not got:
        return False
    cores = {normalise(got), normalise(proper_core(got)) if proper_core(got) else None}
    return normalise(want) in cores or (proper_core(want) is not None and normalise(proper_core(want)) == normalise(got))


def normalise(text: str | None) -> str:
    text = " ".join((text or "").lower().split()).strip(" .,;:!?\"'")
    text = re.sub(r"^(?:the|a|an)\s+", "", text)
    return re.sub(r"['\u2019]s$", "", text).strip()


Parsed = tuple[str | None, str | None, str, bool]  # subject, target, source, marked for review


def old_parser(statement: str) -> Parsed:
    found = split(" ".join(statement.split()).rstrip(" .!;"))
    return (found[0], found[1], "rules", False) if found else (None, None, "none", True)


def new_parser(backend: Any = None) -> Callable[[str], Parsed]:
    def run(statement: str) -> Parsed:
        try:
            found = parse_statement(statement, backend)
        except NoFactError:
            return None, None, "refused", True
        return (found.subject, found.target, found.source, found.needs_review()) if found else (None, None, "none", True)
    return run


def score(rows: list[dict[str, Any]], parse: Callable[[str], Parsed]) -> dict[str, Any]:
    per_shape: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    per_source: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses = []
    subj_ok = targ_ok = review_right = review_wrong = 0
    started = time.perf_counter()
    for row in rows:
        subject, target, source, review = parse(row["statement"])
        s_ok, t_ok = same_subject(subject, row["subject"]), normalise(target) == normalise(row["target"])
        if review and row["shape"] != "role-tag":  # role tags are always marked, right or wrong
            review_right += s_ok and t_ok
            review_wrong += not (s_ok and t_ok)
        subj_ok += s_ok
        targ_ok += t_ok
        for table, key in ((per_shape, row["shape"]), (per_shape, "all"), (per_source, source)):
            table[key][0] += s_ok and t_ok
            table[key][1] += 1
        if not (s_ok and t_ok):
            misses.append({"statement": row["statement"], "shape": row["shape"], "want": [row["subject"], row["target"]],
                           "got": [subject, target], "source": source})
    n = len(rows)
    return {"accuracy": per_shape["all"][0] / n, "subject_accuracy": subj_ok / n, "target_accuracy": targ_ok / n,
            "per_shape": {k: {"right": v[0], "n": v[1], "accuracy": v[0] / v[1]} for k, v in sorted(per_shape.items())},
            "per_source": {k: {"right": v[0], "n": v[1]} for k, v in sorted(per_source.items())},
            "marked_for_review": {"right": review_right, "wrong": review_wrong, "wrong_total": len(misses)},
            "seconds": round(time.perf_counter() - started, 2), "misses": misses}


def summary(results: dict[str, Any]) -> str:
    old, new = results["old"], results["new"]
    lines = ["# Statement anatomy benchmark", "",
             f"{results['n']} hand-written statements (`{results['data']}`); right = subject and target both match "
             "after normalisation (case, outer punctuation, a leading article, a trailing 's; a subject may also be the "
             "other's proper core, 'river Elsk' for 'Elsk', which the scope check matches alike).", "",
             "| shape | n | old rules | new |", "|---|---:|---:|---:|"]
    for shape, row in new["per_shape"].items():
        o = old["per_shape"][shape]
        lines.append(f"| {'**all**' if shape == 'all' else shape} | {row['n']} | {o['accuracy']:.1%} | {row['accuracy']:.1%} |")
    lines += ["", f"Subject right: old {old['subject_accuracy']:.1%}, new {new['subject_accuracy']:.1%}. "
              f"Target right: old {old['target_accuracy']:.1%}, new {new['target_accuracy']:.1%}.", "",
              "Per source of the new parse (right / statements): "
              + ", ".join(f"{k} {v['right']}/{v['n']}" for k, v in new["per_source"].items()) + ".", "",
              f"Marked for review (new; role tags left out, they are always marked): {new['marked_for_review']['wrong']} "
              f"of the {new['marked_for_review']['wrong_total']} wrong parses, and {new['marked_for_review']['right']} "
              "right ones.", "", *([results["note"], ""] if results.get("note") else []),
              f"Time: old {old['seconds']} s, new {new['seconds']} s (spaCy model load included).", "",
              "## Misses of the new parser", "", "| shape | statement | expected | got | source |", "|---|---|---|---|---|"]
    for m in new["misses"]:
        stmt = m["statement"].replace("|", "\\|")
        lines.append(f"| {m['shape']} | {stmt} | {m['want'][0]} / {m['want'][1]} "
                     f"| {m['got'][0]} / {m['got'][1]} | {m['source']} |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(results["new"]["per_shape"])
    xs = range(len(shapes))
    fig, ax = plt.subplots(figsize=(12, 4.5))
    ax.bar([x - 0.2 for x in xs], [results["old"]["per_shape"][s]["accuracy"] for s in shapes], 0.4, label="old rules")
    ax.bar([x + 0.2 for x in xs], [results["new"]["per_shape"][s]["accuracy"] for s in shapes], 0.4, label="new (parser)")
    ax.axhline(0.95, color="grey", linestyle="--", linewidth=1, label="target 95%")
    ax.set_xticks(list(xs), shapes, rotation=35, ha="right")
    ax.set_ylabel("subject and target right")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Statement anatomy: {results['n']} hand-written statements")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT / "evals" / "data" / "statements.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "evals" / "results" / "anatomy"))
    ap.add_argument("--model", default=None, help="a model spec to ask first (e.g. an API model); default: none")
    ap.add_argument("--note", default=None, help="a line of context for summary.md")
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    backend = None
    if args.model:
        from agentedit import Editor

        backend = Editor(args.model).backend
    results = {"data": str(Path(args.data).relative_to(ROOT)) if Path(args.data).is_relative_to(ROOT) else args.data,
               "n": len(rows), "model": args.model, "note": args.note, "old": score(rows, old_parser), "new": score(rows, new_parser(backend))}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(summary(results), encoding="utf-8")
    plot(results, out / "accuracy.png")
    logger.info("old %.1f%%, new %.1f%% of %d statements", 100 * results["old"]["accuracy"], 100 * results["new"]["accuracy"], len(rows))
    return results


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
