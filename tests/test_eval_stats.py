"""Intervals, paired differences, protocols by name, and re-rendering / comparing finished run folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agentedit.errors import ConfigError
from agentedit.evaluation import RunConfig, Runner
from agentedit.evaluation.compare import compare, rerender
from agentedit.evaluation.protocols import PROTOCOLS, check_comparable, protocol_of
from agentedit.evaluation.stats import case_sums, cases_digest, interval, paired

RESULTS = Path(__file__).resolve().parents[1] / "evals" / "results"
DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _rows(method, scores, kind="reliability", per_case=1):
    """Rows of ``method``: case i has ``per_case`` probes, all scored scores[i]."""
    return [{"dataset": "d", "method": method, "size": "all", "case_id": str(i), "probe_idx": j, "kind": kind,
             "group": str(i), "score": s} for i, s in enumerate(scores) for j in range(per_case)]


# -- intervals ----------------------------------------------------------------------------------------
def test_interval_brackets_the_mean_and_is_reproducible():
    rows = _rows("m", [1.0] * 60 + [0.0] * 40)
    lo, hi = interval(rows, "reliability", seed=3)
    assert lo < 0.6 < hi and 0.45 < lo and hi < 0.75
    assert interval(rows, "reliability", seed=3) == [lo, hi]
    assert interval(_rows("m", [1.0] * 20), "reliability") == [1.0, 1.0]
    assert interval(rows, "locality") is None


def test_cluster_bootstrap_resamples_cases_not_probes():
    """Ten probes per case are one piece of evidence, not ten: the interval is as wide as with one probe per case."""
    scores = [1.0] * 12 + [0.0] * 8
    one = interval(_rows("m", scores), "reliability", seed=1)
    ten = interval(_rows("m", scores, per_case=10), "reliability", seed=1)
    assert ten == one and one[1] - one[0] > 0.3
    assert case_sums(_rows("m", scores, per_case=10), "reliability")["0"] == (10.0, 10)


def test_multihop_counts_a_case_once_when_any_question_is_solved():
    rows = [{"case_id": "1", "probe_idx": i, "kind": "multihop", "group": "1", "score": float(i == 2)} for i in range(3)]
    rows += [{"case_id": "2", "probe_idx": i, "kind": "multihop", "group": "2", "score": 0.0} for i in range(3)]
    assert case_sums(rows, "multihop") == {"1": (1.0, 1), "2": (0.0, 1)}


def test_paired_difference_detects_a_real_gap_and_calls_noise_noise():
    better = _rows("a", [1.0] * 80 + [0.0] * 20)
    worse = _rows("b", [1.0] * 40 + [0.0] * 60)
    got = paired(better, worse, "reliability", seed=0)
    assert got["diff"] == 0.4 and got["n_cases"] == 100 and not got["within_noise"]
    assert got["ci"][0] > 0.25 and got["p"] < 0.01
    flip = _rows("c", [float(i % 2) for i in range(100)])
    flop = _rows("d", [float((i + 1) % 2) for i in range(50)] + [float(i % 2) for i in range(50, 100)])
    same = paired(flip, flop, "reliability", seed=0)
    assert abs(same["diff"]) < 0.1 and same["within_noise"] and same["p"] > 0.2
    assert paired(better, _rows("e", [1.0], kind="locality"), "reliability") is None  # no shared probes


def test_paired_difference_uses_only_shared_cases():
    a = _rows("a", [1.0] * 10)
    b = _rows("b", [0.0] * 5)  # cases 0..4 only
    assert paired(a, b, "reliability")["n_cases"] == 5
    assert cases_digest(["2", "1"]) == cases_digest(["1", "2"]) != cases_digest(["1"])


# -- protocols ----------------------------------------------------------------------------------------
def test_protocols_name_their_scoring_and_fix_it():
    assert {"lifelong", "single", "easyedit-knowedit", "rome-counterfact", "wise-lifelong", "mquake-multihop"} <= set(PROTOCOLS)
    cfg = RunConfig(datasets=["zsre"], methods=["none"], protocol="easyedit-knowedit")
    assert cfg.scoring == "teacher-forced"
    with pytest.raises(ConfigError, match="protocol easyedit-knowedit scores teacher-forced"):
        RunConfig(datasets=["zsre"], methods=["none"], protocol="easyedit-knowedit", scoring="generation-match")
    with pytest.raises(ConfigError, match="unknown protocol 'knowedit'"):
        RunConfig(datasets=["zsre"], methods=["none"], protocol="knowedit")
    assert RunConfig(datasets=["zsre"], methods=["none"]).scoring == "generation-match"
    detail = PROTOCOLS.get("wise-lifelong").describe("teacher-forced")
    assert detail["regime"] == "lifelong" and "per token" in detail["locality"]


def test_old_reports_are_read_as_the_protocol_their_config_implies():
    old = json.loads((RESULTS / "zsre-100-final" / "results.json").read_text("utf-8"))
    detail, inferred = protocol_of(old)
    assert inferred and detail["name"] == "lifelong" and detail["scoring"] == "generation-match"
    assert "whole answer" in detail["locality"]
    with pytest.raises(ConfigError, match="different protocols"):
        check_comparable({"a": old, "b": {"protocol": "single", "scoring": "teacher-forced"}})


# -- finished runs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("run", ["standard-qwen2.5-coder-0.5b-instruct", "multihop-mquake-hard-40of215", "zsre-100-final"])
def test_report_rerenders_a_committed_run_from_its_rows(run, tmp_path):
    src = RESULTS / run
    old = json.loads((src / "results.json").read_text("utf-8"))
    report = rerender(src, tmp_path)
    for name, ds in old["datasets"].items():
        new = report["datasets"][name]
        assert new["n_cases"] == ds["n_cases"] and len(new["case_ids"]) == ds["n_cases"]
        for method, metrics in ds["methods"].items():  # metrics added since the run (scope_precision) aside
            assert {k: new["methods"][method][k] for k in metrics} == metrics
            for kind, (lo, hi) in new["intervals"][method].items():
                assert lo <= new["methods"][method][kind] <= hi
    summary = (tmp_path / "summary.md").read_text("utf-8")
    assert "predates recorded protocols" in summary and "Protocol `lifelong`" in summary
    assert "95% percentile" in summary and (tmp_path / f"{next(iter(old['datasets']))}-methods.png").stat().st_size > 0
    assert report["protocol_inferred"] and json.loads((tmp_path / "results.json").read_text("utf-8"))["bootstrap"]["seed"] == 0


def test_compare_puts_runs_of_one_protocol_in_one_table(tmp_path):
    result = compare([RESULTS / "zsre-100-final", RESULTS / "standard-qwen2.5-coder-0.5b-instruct"], tmp_path)
    zsre = result["datasets"]["zsre"]
    assert "zsre-100-final · agentedit" in zsre["entries"] and "standard-qwen2.5-coder-0.5b-instruct · ike" in zsre["entries"]
    cross = [p for p in zsre["paired"] if p["metric"] == "reliability"
             and {p["a"].split(" · ")[0], p["b"].split(" · ")[0]} == {"zsre-100-final", "standard-qwen2.5-coder-0.5b-instruct"}]
    assert cross and all(p["n_cases"] == 100 for p in cross)
    assert all(p["a"].split(" · ")[0] != p["b"].split(" · ")[0] for p in zsre["paired"])
    md = (tmp_path / "compare.md").read_text("utf-8")
    assert "within noise" in md and "Protocol `lifelong`" in md and (tmp_path / "compare-zsre.png").exists()
    with pytest.raises(ConfigError, match="different protocols"):
        compare([RESULTS / "zsre-100-final", RESULTS / "easyedit-ike-qwen2.5-coder-0.5b-instruct-100"])
    with pytest.raises(ConfigError, match="not an `agentedit eval` run folder"):
        compare([RESULTS / "zsre-100-final", tmp_path])


def test_a_new_run_records_protocol_seed_cases_and_paired_tests(tmp_path, make_backend):
    cfg = RunConfig(datasets=["counterfact-edit"], methods=["none", "prefix-all"], limit=6, seed=5,
                    protocol="single", data_dir=str(DATA))
    runner = Runner(cfg, tmp_path / "run", backend=make_backend("Rome"))
    try:
        report = runner.run()
    finally:
        runner.close()
    ds = report["datasets"]["counterfact-edit"]
    assert report["protocol_detail"]["name"] == "single" and report["bootstrap"]["seed"] == 5
    assert len(ds["case_ids"]) == 6 and set(ds["intervals"]["prefix-all"]) == {"reliability", "generality", "locality"}
    assert {(p["a"], p["b"]) for p in ds["paired"]} == {("prefix-all", "none")}
    summary = (tmp_path / "run" / "summary.md").read_text("utf-8")
    assert "Protocol `single`" in summary and "Paired differences" in summary
    assert "predates" not in summary
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    again = rerender(tmp_path / "copy")  # the stored case ids choose the rows, the same numbers come back
    assert again["datasets"]["counterfact-edit"]["methods"] == ds["methods"]
    assert again["datasets"]["counterfact-edit"]["intervals"] == ds["intervals"]
