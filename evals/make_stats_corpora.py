"""Offline text for the white-box key statistics, to compare against text sampled from the model.

ROME and MEMIT were published with statistics over Wikipedia, which cannot be downloaded here.
This writes two offline stand-ins, both plain UTF-8 files for ``--stats-corpus`` /
``whitebox_bench.py --corpus-file``:

- ``pydoc.txt``: the prose of Python's own reference topics (``pydoc_data``, shipped with
  CPython): real human English, but about programming, far from encyclopaedic facts;
- ``counterfact-train-facts.txt``: one true sentence per CounterFact *training* case (its prompt
  followed by the true answer), shuffled: factual, encyclopaedic in shape, and never an
  evaluation case.

    python evals/make_stats_corpora.py --out /tmp/agentedit-corpora
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def pydoc_prose() -> str:
    import pydoc_data.topics as topics

    return "\n\n".join(topics.topics[k] for k in sorted(topics.topics))


def counterfact_facts(data_dir: Path, seed: int = 0) -> str:
    path = data_dir / "counterfact" / "counterfact-train.json"
    if not path.exists():
        raise SystemExit(f"{path} not found; pass --data-dir (the shared datasets folder)")
    rows = json.loads(path.read_text("utf-8"))
    facts = [f"{r['prompt'].strip()} {r['ground_truth'].strip()}." for r in rows
             if isinstance(r, dict) and str(r.get("prompt", "")).strip() and str(r.get("ground_truth", "")).strip()]
    random.Random(seed).shuffle(facts)
    return " ".join(facts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/agentedit-corpora")
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("pydoc.txt", pydoc_prose()), ("counterfact-train-facts.txt", counterfact_facts(Path(args.data_dir)))):
        (out / name).write_text(text, "utf-8")
        print(f"{out / name}: {len(text):,} characters")


if __name__ == "__main__":
    main()
