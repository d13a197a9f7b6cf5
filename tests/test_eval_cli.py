"""The eval command group: a declared dataset file and a named protocol on the command line, and `eval report` /
`eval compare` on finished run folders (stub backend, no model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import agentedit.cli as cli
from agentedit.evaluation import DATASETS

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "evals" / "results"


@pytest.fixture()
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_backend):
    monkeypatch.setattr(cli.console, "width", 400)
    monkeypatch.setattr("agentedit.evaluation.runner.resolve_backend", lambda spec, **kw: make_backend("Rome"))
    monkeypatch.setattr(DATASETS, "_entries", dict(DATASETS._entries))  # a registered --dataset-file goes away
    monkeypatch.setattr(DATASETS, "_loaded", dict(DATASETS._loaded))
    runner = CliRunner()
    return lambda *args: runner.invoke(cli.app, ["--store-dir", str(tmp_path / "stores"), *args])


def test_eval_reads_a_declared_file_under_a_named_protocol(run, tmp_path):
    res = run("eval", "--dataset-file", str(HERE / "data" / "schemas" / "zsre_mend_eval.json"), "--schema", "zsre-mend",
              "--method", "none", "--method", "prefix-all", "--protocol", "single", "--out-dir", str(tmp_path / "runs"), "--run-name", "mend")
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "runs" / "mend" / "results.json").read_text("utf-8"))
    assert list(report["datasets"]) == ["zsre_mend_eval"] and report["protocol_detail"]["name"] == "single"
    assert report["datasets"]["zsre_mend_eval"]["case_ids"] == ["0", "1"]
    shutil.copytree(tmp_path / "runs" / "mend", tmp_path / "again")
    res = run("eval", "report", str(tmp_path / "again"))
    assert res.exit_code == 0, res.output
    assert "re-rendered" in (tmp_path / "again" / "summary.md").read_text("utf-8").lower()


def test_eval_flags_that_do_not_fit_are_clear_errors(run, tmp_path):
    res = run("eval", "--dataset-file", str(HERE / "data" / "schemas" / "zsre_mend_eval.json"))
    assert res.exit_code != 0 and "--dataset-file and --schema go together" in str(res.exception)
    res = run("eval", "--protocol", "easyedit-knowedit", "--scoring", "generation-match", "--out-dir", str(tmp_path))
    assert res.exit_code != 0 and "scores teacher-forced" in str(res.exception)


def test_eval_compare_prints_one_table_and_refuses_mixed_protocols(run, tmp_path):
    res = run("eval", "compare", str(RESULTS / "zsre-100-final"), str(RESULTS / "standard-qwen2.5-coder-0.5b-instruct"),
              "--out", str(tmp_path / "cmp"))
    assert res.exit_code == 0, res.output
    assert "| zsre-100-final · agentedit |" in res.output and (tmp_path / "cmp" / "compare.json").exists()
    res = run("eval", "compare", str(RESULTS / "zsre-100-final"), str(RESULTS / "easyedit-ike-qwen2.5-coder-0.5b-instruct-100"))
    assert res.exit_code != 0 and "different protocols" in str(res.exception)
