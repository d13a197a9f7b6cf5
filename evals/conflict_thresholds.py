"""How often would two edits' relation templates be taken for one relation? (issue 17, item 4)

CounterFact cases carry no relation ids; :func:`agentedit.scope.training.relation_clusters` recovers them (a
case's locality prompt is another subject under the same relation). For every pair of distinct templates,
same relation or not, this prints the masked-template cosine (MiniLM) distribution and, per threshold, the
share of same-relation pairs above it (a correction caught) and of different-relation pairs above it (a
wrong supersession), after the contrast veto. Run: ``PYTHONPATH=. python evals/conflict_thresholds.py [counterfact-train.json]``.
"""

from __future__ import annotations

import json
import sys
from itertools import combinations
from pathlib import Path

import numpy as np

from agentedit.memory import shared_embedder
from agentedit.scope.contrast import relation_conflict
from agentedit.scope.training import relation_clusters

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "counterfact" / "counterfact-train.json"


def main(path: Path) -> None:
    cases = relation_clusters(json.loads(path.read_text("utf-8")))
    rel_of = {c.template: c.relation for c in cases}
    templates = sorted(rel_of)
    vecs = shared_embedder().embed(templates)
    same, diff = [], []
    for i, j in combinations(range(len(templates)), 2):
        a, b = templates[i], templates[j]
        score = -2.0 if relation_conflict(a, b) else float(vecs[i] @ vecs[j])
        (same if rel_of[a] == rel_of[b] else diff).append(score)
    s, d = np.array(same), np.array(diff)
    print(f"{len(templates)} templates, {len(set(rel_of.values()))} relations; {len(s)} same-relation pairs, {len(d)} other")
    print("threshold  same>=t  other>=t")
    rows = []
    for t in (0.5, 0.55, 0.6, 0.639, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9):
        rows.append({"threshold": t, "same_relation": round(float(np.mean(s >= t)), 4),
                     "other_relation": round(float(np.mean(d >= t)), 4)})
        print(f"{t:9.3f}  {np.mean(s >= t):7.3f}  {np.mean(d >= t):8.4f}")
    from _report import write

    lines = [f"# Relation templates taken for one relation ({len(templates)} templates of {path.name}, "
             f"{len(set(rel_of.values()))} relations)", "",
             "Share of template pairs whose masked-template cosine (MiniLM, after the contrast veto) reaches each "
             "threshold: same relation (a correction caught) and other relation (a wrong supersession).", "",
             "| threshold | same relation | other relation |", "|---|---|---|",
             *[f"| {r['threshold']} | {r['same_relation']:.3f} | {r['other_relation']:.4f} |" for r in rows]]
    write("conflict-thresholds", {"templates": len(templates), "same_pairs": len(s), "other_pairs": len(d), "rows": rows},
          lines, {f"other relation >= {r['threshold']}": r["other_relation"] for r in rows},
          title="Wrong-supersession rate by threshold", ylabel="share of other-relation pairs")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
