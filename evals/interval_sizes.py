"""How many cases a benchmark needs for a 95% interval of a given half-width, from finished runs (issue 21).

For each run folder, dataset, method and metric, the per-case scores (a case's probe scores; multi-hop: 0/1 per case)
give the case-level standard deviation ``sd`` of the probe-weighted metric (delta method for a ratio over cases); the 95% half-width with ``n`` cases is about
``1.96 * sd / sqrt(n)``, so ``n = (1.96 * sd / h)^2`` cases give half-width ``h``. Beside it: the measured bootstrap
interval of the run itself (:func:`agentedit.evaluation.stats.interval`), so the normal approximation can be checked
against the resampling. No model calls.

    python evals/interval_sizes.py evals/results/standard-qwen2.5-coder-0.5b-instruct \
        evals/results/multihop-mquake-hard-40of215 --half-width 0.03 --run-name interval-sizes
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentedit.evaluation.compare import open_run, probed_rows  # noqa: E402
from agentedit.evaluation.report import machine, md_table, write_json  # noqa: E402
from agentedit.evaluation.stats import METRICS, case_sums, interval  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def sizes(rows: list[dict[str, Any]], half_width: float, *, label: str) -> list[dict[str, Any]]:
    out = []
    for dataset in sorted({r["dataset"] for r in rows}):
        for method in sorted({r["method"] for r in rows if r["dataset"] == dataset}):
            mine = [r for r in rows if r["dataset"] == dataset and r["method"] == method]
            for kind in METRICS:
                sums = case_sums(mine, kind)
                if len(sums) < 2:
                    continue
                # the metric is a ratio over cases (probe-weighted): its case-level spread is that of s_i - R * n_i,
                # in units of a case's mean probe count (the delta method)
                total_s, total_n = sum(v[0] for v in sums.values()), sum(v[1] for v in sums.values())
                mu, n_bar = total_s / total_n, total_n / len(sums)
                dev = [(s - mu * n) / n_bar for s, n in sums.values()]
                sd = math.sqrt(sum(d * d for d in dev) / (len(dev) - 1))
                ci = interval(mine, kind)
                out.append({"run": label, "dataset": dataset, "method": method, "metric": kind, "cases": len(sums),
                            "mean": round(mu, 4), "case_sd": round(sd, 4),
                            "ci95": f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "",
                            "half_width_now": round((ci[1] - ci[0]) / 2, 4) if ci else None,
                            "cases_for_half_width": math.ceil((1.96 * sd / half_width) ** 2) if sd > 0 else 1})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="finished run folders")
    ap.add_argument("--half-width", type=float, default=0.03)
    ap.add_argument("--run-name", default="interval-sizes")
    args = ap.parse_args()
    table: list[dict[str, Any]] = []
    for folder in args.runs:
        run = open_run(folder)
        rows, _ = probed_rows(run)
        rows = [r for r in rows if str(r.get("size", "all")) == "all"]  # the headline rows, every edit in memory
        table += sizes(rows, args.half_width, label=Path(folder).name)
    out = ROOT / "evals" / "results" / args.run_name
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", {"half_width": args.half_width, "machine": machine(), "rows": table})
    cols = ["run", "dataset", "method", "metric", "cases", "mean", "case_sd", "ci95", "half_width_now",
            "cases_for_half_width"]
    (out / "summary.md").write_text(
        f"# Cases needed for a ±{args.half_width} 95% interval\n\nFrom the stored rows of finished runs, no model "
        "calls. `ci95`: the run's own cluster-bootstrap interval over cases (2000 resamples, seed 0); "
        "`cases_for_half_width`: (1.96 · case_sd / half-width)², the cases a run of this model needs for that "
        "half-width.\n\n" + md_table(table, cols) + "\n", "utf-8")
    print(out / "summary.md")


if __name__ == "__main__":
    main()
