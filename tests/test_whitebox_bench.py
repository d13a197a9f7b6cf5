"""The white-box benchmark script runs as is on a CPU (the same command times the 7B shape on a lent GPU)."""

from __future__ import annotations

import json
from pathlib import Path

from eval_scripts import load_eval_script


def _bench():
    return load_eval_script("whitebox_bench")


def test_synthetic_timing_run_writes_its_report(tmp_path: Path) -> None:
    bench = _bench()
    rc = bench.main(["--synthetic", "small", "--device", "cpu", "--methods", "rome,memit", "--rome-edits", "1",
                     "--memit-batch", "2", "--steps", "2", "--contexts", "1", "--corpus-samples", "4",
                     "--corpus-length", "16", "--cache-dir", str(tmp_path / "stats"), "--out-dir", str(tmp_path),
                     "--run-name", "tiny"])
    assert rc == 0
    report = json.loads((tmp_path / "tiny" / "results.json").read_text())
    rome, memit = report["methods"]["rome"], report["methods"]["memit"]
    assert rome["n_edits"] == 1 and rome["seconds_per_edit"] > 0
    assert memit["n_edits"] == 2 and memit["protocol"] == "batch of 2" and memit["seconds_per_edit"] > 0
    assert rome["peak_memory_gb"] > 0
    assert "reliability" not in rome  # random weights: timing only, no quality figures
    assert (tmp_path / "tiny" / "summary.md").is_file() and list((tmp_path / "tiny").glob("*.png"))
