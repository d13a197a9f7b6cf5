"""Regenerate agentedit/scope/default_calibration.json (the calibration shipped with the package).

    python evals/make_default_calibration.py [--data ../shared/datasets/counterfact/counterfact-train.json]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from agentedit.memory import shared_embedder
from agentedit.scope import calibrate_similarity

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(ROOT.parent / "shared/datasets/counterfact/counterfact-train.json"))
    ap.add_argument("--n-cases", type=int, default=2000)
    ap.add_argument("--target-specificity", type=float, default=0.98)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    cal = calibrate_similarity(args.data, shared_embedder(), n_cases=args.n_cases, target_specificity=args.target_specificity)
    out = ROOT / "agentedit/scope/default_calibration.json"
    out.write_text(json.dumps(cal.to_dict(), indent=2) + "\n", "utf-8")
    print(json.dumps(cal.to_dict(), indent=2))


if __name__ == "__main__":
    main()
