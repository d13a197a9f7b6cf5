"""Evaluation harness: metrics on hand-made cases, loaders on the shared files, suites, and
end-to-end runs on SmolLM2 (real llama.cpp server; in-process llama.cpp for teacher forcing)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agentedit.errors import ConfigError
from agentedit.evaluation import (DATASETS, EvalDataError, RunConfig, Runner, agree, gen_match, load_dataset, normalise,
                                  read_rows)
from agentedit.evaluation.report import aggregate
from agentedit.evaluation.suites import config_from_suite, load_suite

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


# -- metrics ----------------------------------------------------------------------------------------
def test_normalise_and_generation_match():
    assert normalise("The  Eiffel-Tower, in PARIS!") == "eiffel tower in paris"
    assert gen_match("It is located in Rome, Italy.", ["Rome"])
    assert gen_match("Answer: the United Kingdom", ["UK", "United Kingdom"])
    assert not gen_match("Romeo and Juliet", ["Rome"])  # whole words only
    assert not gen_match("anything", [""])
    assert agree("Paris.", "paris") and not agree("Paris, France", "Paris")


def _row(kind, score, case="1", group="", applied=(), own=False):
    return {"kind": kind, "score": score, "case_id": case, "group": group, "applied": list(applied), "own_applied": own}


def test_aggregate_known_answers():
    rows = [_row("reliability", 1.0, "1", own=True), _row("reliability", 0.0, "2"),
            _row("locality", 1.0, "1"), _row("locality", 0.0, "2", applied=["x"]),
            _row("multihop", 0.0, "3", group="g1"), _row("multihop", 1.0, "3", group="g1"), _row("multihop", 0.0, "4", group="g2")]
    agg = aggregate(rows)
    assert agg["reliability"] == 0.5 and agg["locality"] == 0.5
    assert agg["multihop"] == 0.5  # g1 solved by one of its questions, g2 not
    assert "generality" not in agg and "portability" not in agg  # absent metrics are left out, not 0
    assert agg["edit_applied"] == round(1 / 5, 4) and agg["untouched"] == 0.5
    assert agg["n_cases"] == 4 and agg["n_probes"] == 7


# -- loaders ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,count,edits_per_case,kinds", [
    ("counterfact-edit", 10000, 1, {"reliability", "generality", "locality"}),
    ("zsre", 1304, 1, {"reliability", "generality", "locality", "portability"}),
    ("wiki_counterfact", 1428, 1, {"reliability", "locality", "portability"}),
    ("counterfact-portability", 1031, 1, {"reliability", "generality", "locality", "portability"}),
    ("mquake-hard", 215, 4, {"multihop"}),
    ("sanitation", 80, 1, {"reliability", "locality"}),
])
def test_loaders_read_the_shared_files(name, count, edits_per_case, kinds):
    cases = load_dataset(name, DATA)
    assert len(cases) == count
    assert len(cases[0].edits) == edits_per_case
    assert {p.kind for c in cases for p in c.probes} == kinds
    assert all(e["target_new"].strip() for c in cases[:50] for e in c.edits)
    assert all(p.prompt.strip() for c in cases[:50] for p in c.probes)


def test_mquake_questions_share_a_group_and_accept_aliases():
    case = load_dataset("mquake-hard", DATA, limit=1)[0]
    assert {p.group for p in case.probes} == {case.case_id} and len(case.probes) == 3
    assert "Arabic" in case.probes[0].targets and "Arabic language" in case.probes[0].targets
    assert case.edits[0]["prompt"] == "Hey Jude was performed by"


def test_unknown_missing_and_malformed_data_are_clear_errors(tmp_path):
    with pytest.raises(EvalDataError, match="unknown dataset 'nope'"):
        load_dataset("nope", DATA)
    with pytest.raises(EvalDataError, match="not found"):
        load_dataset("zsre", tmp_path)
    bad = tmp_path / "counterfact"
    bad.mkdir()
    (bad / "counterfact-edit.json").write_text('[{"prompt": "x", "subject": "y"}]', "utf-8")
    with pytest.raises(EvalDataError, match="record 0: field 'target_new'"):
        load_dataset("counterfact-edit", tmp_path)
    (bad / "counterfact-edit.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(EvalDataError, match="not valid UTF-8 JSON"):
        load_dataset("counterfact-edit", tmp_path)


def test_every_dataset_has_a_loader_and_file():
    for name in DATASETS:
        assert (DATA / DATASETS.get(name).path).exists(), name


# -- suites -----------------------------------------------------------------------------------------
def test_suites_load_and_override():
    quick = load_suite("quick")
    cfg = config_from_suite(quick, limit=2, methods=["none", "agentedit"])
    assert cfg.suite == "quick" and cfg.limit == 2 and cfg.methods == ["none", "agentedit"]
    assert set(load_suite("standard")["datasets"]) == set(DATASETS)
    with pytest.raises(ConfigError, match="unknown suite"):
        load_suite("nope")


def test_suite_with_unknown_setting_is_rejected(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("datasets: [zsre]\nmethods: [none]\nspeed: fast\n", "utf-8")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_suite(str(p))


def test_unknown_method_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="unknown method 'rome2'"):
        Runner(RunConfig(datasets=["zsre"], methods=["rome2"], data_dir=str(DATA)), tmp_path, backend=object())


# -- end to end on SmolLM2 --------------------------------------------------------------------------
SMOL = "llamacpp:smollm2-135m-instruct"


@pytest.mark.integration
def test_quick_style_run_end_to_end_and_resume(tmp_path):
    cfg = RunConfig(datasets=["counterfact-edit", "zsre"], methods=["none", "prefix-all", "agentedit"], model=SMOL,
                    limit=3, memory_sizes=[6], size_probe_cases=2, max_tokens=12, data_dir=str(DATA), suite="test")
    runner = Runner(cfg, tmp_path / "run")
    try:
        report = runner.run()
    finally:
        runner.close()
    out = tmp_path / "run"
    # a finished run keeps its rows packed; only a run in progress has the plain file it appends to
    assert not (out / "cases.jsonl").exists()
    assert {p.name for p in out.iterdir()} >= {"results.json", "cases.jsonl.gz", "summary.md", "counterfact-edit-methods.png",
                                               "zsre-methods.png", "counterfact-edit-reliability-by-size.png"}
    saved = json.loads((out / "results.json").read_text())
    assert saved["protocol"] == "lifelong" and saved["scoring"] == "generation-match"
    cf = saved["datasets"]["counterfact-edit"]["methods"]
    assert set(cf) == {"none", "prefix-all", "agentedit"}
    assert cf["none"]["locality"] == 1.0 and cf["none"]["edit_applied"] == 0.0  # the reference agrees with itself
    assert cf["prefix-all"]["edit_applied"] == 1.0 and cf["prefix-all"]["untouched"] == 0.0  # no scope check
    assert all(0.0 <= v <= 1.0 for m in cf.values() for k, v in m.items() if k in ("reliability", "generality", "locality"))
    assert "portability" in saved["datasets"]["zsre"]["methods"]["agentedit"]
    assert "6" in saved["datasets"]["zsre"]["by_size"]
    assert saved["cases"] == "cases.jsonl.gz"
    rows = read_rows(out)
    n_rows = len(rows)
    assert n_rows > 0 and all({"prompt", "output", "score", "applied"} <= set(r) for r in rows)
    assert report["model_calls"] > 0

    runner = Runner(cfg, out)  # resume: everything is done, nothing is asked again
    try:
        again = runner.run()
    finally:
        runner.close()
    assert again["model_calls"] == 0
    assert read_rows(out) == rows and not (out / "cases.jsonl").exists()  # unpacked, nothing added, packed again
    assert again["datasets"]["counterfact-edit"]["methods"] == saved["datasets"]["counterfact-edit"]["methods"]

    with pytest.raises(ConfigError, match="different configuration"):
        Runner(RunConfig(**{**cfg.__dict__, "limit": 4}), out, backend=object())


@pytest.mark.integration
def test_single_protocol_retracts_each_case(tmp_path):
    # two in-context methods: the second must be able to add the same edits the first retracted
    cfg = RunConfig(datasets=["counterfact-edit"], methods=["prefix-all", "ike"], model=SMOL, limit=2, protocol="single",
                    max_tokens=8, data_dir=str(DATA))
    runner = Runner(cfg, tmp_path / "single")
    try:
        report = runner.run()
    finally:
        runner.close()
    rows = read_rows(tmp_path / "single")
    for method in ("prefix-all", "ike"):
        mine = [r for r in rows if r["method"] == method]
        # with only the case's own edit in memory, whatever is injected is that case's edit
        assert mine and all(r["applied"] == [f"counterfact-edit:{r['case_id']}:0"] for r in mine)
        assert report["datasets"]["counterfact-edit"]["methods"][method]["n_cases"] == 2


@pytest.mark.integration
def test_teacher_forced_scoring_in_process(tmp_path):
    from agentedit.evaluation.scoring import TeacherForcedScorer
    from agentedit.provision import ensure_model

    scorer = TeacherForcedScorer(ensure_model("smollm2-135m-instruct"), n_ctx=512)
    tgt, preds = scorer.top1("The capital of France is", "Paris")
    assert tgt and len(preds) == len(tgt)
    assert scorer.accuracy("The capital of France is", "Paris") == 1.0
    assert scorer.accuracy("The capital of France is", "Zanzibar Quux") < 1.0
    cfg = RunConfig(datasets=["counterfact-edit"], methods=["prefix-all"], model=SMOL, limit=2, scoring="teacher-forced",
                    data_dir=str(DATA))
    runner = Runner(cfg, tmp_path / "tf")
    try:
        report = runner.run()
    finally:
        runner.close()
    m = report["datasets"]["counterfact-edit"]["methods"]
    assert report["model_calls"] == 0  # teacher forcing never generates
    assert m["none"]["locality"] == 1.0 and 0.0 <= m["prefix-all"]["reliability"] <= 1.0


def _run(cfg: RunConfig, out: Path, backend) -> tuple[Runner, dict, list[dict]]:
    """One harness run to the end: the runner, its report and the rows it wrote."""
    runner = Runner(cfg, out, backend=backend)
    try:
        report = runner.run()
    finally:
        runner.close()
    return runner, report, read_rows(out)


def test_multihop_methods_probe_a_slice_with_every_case_in_memory(tmp_path, make_backend):
    """--probe-limit: the first case is probed while all three cases' edits are in memory; the decomposition
    methods record model calls, hops and stop reasons per question."""
    backend = make_backend(lambda payload: "Final answer: Arabic")
    cfg = RunConfig(datasets=["mquake-hard"], methods=["none", "agentedit-decompose", "mello"], limit=3, probe_limit=1,
                    data_dir=str(DATA), suite="test")
    runner, report, rows = _run(cfg, tmp_path / "mh", backend)
    assert len(runner._facts) == 12  # 3 cases x 4 edits in memory
    assert {r["case_id"] for r in rows} == {"7417"} and len(rows) == 9  # 3 questions x 3 methods, first case only
    mine = [r for r in rows if r["method"] == "agentedit-decompose"]
    assert all(r["decomposed"] and r["stop"] and "model_calls" in r for r in mine)
    # The edit chain walks this case's four edits: Hey Jude -> Madonna -> Narendra Modi -> Australia -> Arabic.
    assert any([h["answer"] for h in r["hops"]] == ["Madonna", "Narendra Modi", "Australia", "Arabic"] for r in mine)
    assert report["datasets"]["mquake-hard"]["methods"]["agentedit-decompose"]["multihop"] == 1.0
    assert all(not r["hops"] for r in rows if r["method"] == "mello")  # MeLLo: no edit chain, the model's "final answer"


def test_probe_kinds_run_only_the_asked_kinds(tmp_path, make_backend):
    """--kind portability: only portability probes are asked (and scored), the edits are all still in memory."""
    backend = make_backend(lambda payload: "Paris")
    cfg = RunConfig(datasets=["wiki_counterfact"], methods=["none", "agentedit"], limit=4, probe_kinds=["portability"],
                    data_dir=str(DATA), suite="test")
    _, report, rows = _run(cfg, tmp_path / "port", backend)
    expected = sum(p.kind == "portability" for c in load_dataset("wiki_counterfact", DATA)[:4] for p in c.probes)
    assert rows and {r["kind"] for r in rows} == {"portability"} and len(rows) == 2 * expected
    methods = report["datasets"]["wiki_counterfact"]["methods"]
    assert "portability" in methods["agentedit"] and "locality" not in methods["agentedit"]
    with pytest.raises(ConfigError, match="unknown probe kind"):
        RunConfig(datasets=["zsre"], methods=["none"], probe_kinds=["portabilty"])
    with pytest.raises(ConfigError, match="probe_limit must be at least 1"):
        RunConfig(datasets=["zsre"], methods=["none"], probe_limit=0)  # 0 would otherwise probe every case


def test_a_run_can_be_widened_to_more_probed_cases(tmp_path, make_backend):
    """--probe-limit is not part of the run's identity: a later run over the same folder asks only the new cases."""
    seen: list[str] = []

    def reply(payload):
        seen.append(json.dumps(payload))
        return "Paris"

    backend = make_backend(reply)
    cfg = RunConfig(datasets=["counterfact-edit"], methods=["none", "prefix-all"], limit=3, probe_limit=1,
                    data_dir=str(DATA), suite="test")
    for probe_limit in (1, 2):
        cfg.probe_limit = probe_limit
        _, _, rows = _run(cfg, tmp_path / "wide", backend)
        if probe_limit == 1:
            first_calls = len(seen)
    cases = load_dataset("counterfact-edit", DATA)[:2]
    assert {r["case_id"] for r in rows} == {c.case_id for c in cases}
    assert len(rows) == 2 * sum(len(c.probes) for c in cases)  # every probe once per method, none twice
    assert first_calls and len(seen) - first_calls <= 2 * len(cases[1].probes) + len(cases[0].probes)
    # narrowed again: the report covers the one case every method is asked about, the wider rows stay on disk
    cfg.probe_limit = 1
    _, narrow, kept = _run(cfg, tmp_path / "wide", backend)
    assert kept == rows
    assert {m: v["n_cases"] for m, v in narrow["datasets"]["counterfact-edit"]["methods"].items()} == \
        {"none": 1, "prefix-all": 1}
    with pytest.raises(ConfigError, match="different configuration"):
        Runner(RunConfig(datasets=["counterfact-edit"], methods=["none"], limit=3, data_dir=str(DATA), suite="test"),
               tmp_path / "wide", backend=backend)


def test_a_resumed_run_reports_the_wall_time_of_all_its_processes(tmp_path, make_backend):
    """A run stopped and resumed (e.g. across sessions) adds up its processes' time and model calls."""
    def reply(payload):
        time.sleep(0.02)
        return "Paris"

    backend = make_backend(reply)
    cfg = RunConfig(datasets=["counterfact-edit"], methods=["none", "prefix-all"], limit=2, probe_limit=1,
                    data_dir=str(DATA), suite="test")
    _, first, _ = _run(cfg, tmp_path / "run", backend)
    cfg.probe_limit = 2
    _, second, rows = _run(cfg, tmp_path / "run", backend)
    state = json.loads((tmp_path / "run" / "run.json").read_text("utf-8"))
    assert [s["rows_done"] for s in state["sessions"]] == [len(rows) // 2, len(rows)]
    assert state["wall_s_spent"] == pytest.approx(sum(s["wall_s"] for s in state["sessions"]), abs=0.2)
    assert second["processes"] == 2 and second["wall_s"] >= first["wall_s"] + state["sessions"][1]["wall_s"] - 0.2
    assert second["model_calls_run"] == first["model_calls"] + second["model_calls"]
    assert "over 2 processes" in (tmp_path / "run" / "summary.md").read_text("utf-8")


def test_an_interrupted_run_keeps_its_rows_and_a_finished_one_packs_them(tmp_path, make_backend):
    """A run that fails mid-way leaves the plain cases.jsonl it appended to (nothing packed, nothing lost); the
    resumed run asks only what is missing and packs the rows once it has finished."""
    calls = []

    def flaky(payload):
        calls.append(payload)
        if len(calls) == 5:
            raise RuntimeError("server went away")
        return "Paris"

    cfg = RunConfig(datasets=["counterfact-edit"], methods=["none", "prefix-all"], limit=2, data_dir=str(DATA),
                    suite="test")
    out = tmp_path / "run"
    runner = Runner(cfg, out, backend=make_backend(flaky))
    with pytest.raises(RuntimeError, match="went away"):
        try:
            runner.run()
        finally:
            runner.close()
    assert not (out / "cases.jsonl.gz").exists() and not (out / "results.json").exists()
    kept = read_rows(out)
    assert 0 < len(kept) < 5

    _, report, rows = _run(cfg, out, make_backend(lambda payload: "Paris"))
    assert (out / "cases.jsonl.gz").exists() and not (out / "cases.jsonl").exists()
    assert all(r in rows for r in kept)
    keys = [(r["method"], r["case_id"], r["probe_idx"]) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * sum(len(c.probes) for c in load_dataset("counterfact-edit", DATA)[:2])
    with pytest.raises(FileNotFoundError, match="no cases.jsonl"):
        read_rows(tmp_path / "elsewhere")


# -- the black-box suite and scope figures -----------------------------------------------------------
def test_blackbox_suite_runs_each_scope_checker_through_the_runner(tmp_path, make_backend):
    """The black-box quality benchmark (once evals/blackbox.py's own loop) is a suite of the harness."""
    cfg = config_from_suite(load_suite("blackbox"))
    assert cfg.datasets == ["counterfact-edit"] and cfg.limit == 200 and cfg.max_tokens == 16
    assert cfg.methods == ["none", "prefix-all", "agentedit-similarity", "agentedit-relation"]
    cfg = config_from_suite(load_suite("blackbox"), limit=2, data_dir=str(DATA))
    _, report, rows = _run(cfg, tmp_path / "bb", make_backend(lambda payload: "Paris"))
    methods = report["datasets"]["counterfact-edit"]["methods"]
    assert list(methods) == cfg.methods and all(m["n_cases"] == 2 for m in methods.values())
    assert methods["prefix-all"]["edit_applied"] == 1.0 and "scope_precision" in methods["prefix-all"]
    assert {r["method"] for r in rows} == set(cfg.methods)


def test_aggregate_reports_scope_precision():
    rows = [_row("reliability", 1.0, "1", applied=["a"], own=True), _row("generality", 0.0, "1", applied=["b"]),
            _row("locality", 1.0, "2", applied=["a"]), _row("locality", 1.0, "3")]
    agg = aggregate(rows)
    assert agg["scope_precision"] == round(1 / 3, 4) and agg["edit_applied"] == 0.5 and agg["untouched"] == 0.5
    assert "scope_precision" not in aggregate([_row("reliability", 0.0, "1"), _row("locality", 1.0, "2")])  # nothing injected


def test_a_case_restated_later_is_left_out_of_reliability_and_counted(memory):
    from agentedit.evaluation.cases import Case
    from agentedit.evaluation.runner import _edits_of, _restated_later
    from agentedit.scope.conflict import ConflictMatcher

    def case(cid: str, target: str) -> Case:
        return Case(cid, "zsre", [{"prompt": "Which team does Nicolas Raffault play for?", "subject": "Nicolas Raffault",
                                   "target_new": target}])

    cases = [case("a", "FC Nantes"), case("b", "Stade Rennais"), case("c", "Stade Rennais")]
    recs = memory.add_many(_edits_of(cases), actor="eval")
    # b restates a's fact with another answer; c restates b's with the same answer, which b's probes still accept
    assert _restated_later(recs, cases) == {"a"}
    # in other words: only the newer reaches the model at query time, so the older case is restated too
    worded = [case("a", "FC Nantes"), Case("d", "zsre", [{"prompt": "What team is Nicolas Raffault on?",
                                                          "subject": "Nicolas Raffault", "target_new": "Lille"}])]
    recs = memory.add_many(_edits_of(worded), namespace="other", actor="eval")
    matcher = ConflictMatcher(memory.embedder, conflict_at=0.639, supersede_at=0.5)
    assert _restated_later(recs, worded) == set() and _restated_later(recs, worded, matcher) == {"a"}
    rows = [{"kind": "reliability", "score": 0.0, "applied": ["b:0"], "own_applied": False, "case_id": "a",
             "restated_later": True},
            {"kind": "reliability", "score": 1.0, "applied": ["c:0"], "own_applied": True, "case_id": "b"},
            {"kind": "locality", "score": 1.0, "applied": [], "own_applied": False, "case_id": "a"}]
    agg = aggregate(rows)
    assert agg["reliability"] == 1.0 and agg["restated_later"] == 1 and agg["locality"] == 1.0
