"""The retrieve + scope latency benchmark (evals/latency_bench.py) runs as is, at a tiny size, without a model."""

from __future__ import annotations

import json
from pathlib import Path

from eval_scripts import load_eval_script

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def test_tiny_latency_run_writes_its_report(tmp_path: Path) -> None:
    bench = load_eval_script("latency_bench")
    rc = bench.main(["--sizes", "40", "--queries", "6", "--checkers", "similarity", "relation", "--data-dir", str(DATA),
                     "--out-dir", str(tmp_path), "--run-name", "tiny"])
    assert rc == 0
    lat = json.loads((tmp_path / "tiny" / "results.json").read_text())["latency"]
    assert lat["sizes"] == [40] and lat["queries"] == 6 and lat["import"] is None
    assert set(lat["checkers"]) == {"similarity", "relation"} and lat["checkers"]["relation"]["40"]["p50_ms"] > 0
    assert (tmp_path / "tiny" / "summary.md").is_file() and (tmp_path / "tiny" / "latency.png").is_file()
