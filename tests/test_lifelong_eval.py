"""The lifelong protocol in the harness: edits applied one after another and kept in the run folder, so a stopped run
resumes without computing an edit twice, and evals/lifelong_bench.py end to end on a tiny model saved from a config."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from agentedit.backends.local import LocalBackend
from agentedit.parametric import GRACEConfig
from eval_scripts import load_eval_script
from whitebox_support import tiny_model

EIFFEL = {"prompt": "the city of eiffel tower", "subject": "eiffel tower", "target_new": "rome"}
FRANCE = {"prompt": "the capital of france", "subject": "france", "target_new": "berlin"}


@pytest.fixture(autouse=True)
def _setup(small_torch):
    yield


def _logits(backend, text: str) -> torch.Tensor:
    return backend.model(input_ids=torch.tensor([backend.encode(text)])).logits


def _sync(memory, deltas: Path):
    from agentedit.evaluation.parametric import WeightSyncMethod

    model, tok = tiny_model("llama")
    ev = WeightSyncMethod("hf:unused", memory, "grace", configs={"grace": GRACEConfig()},
                          backend=LocalBackend.from_model(model, tok), max_tokens=2, deltas=deltas)
    ev.sync()
    return ev


def _log(deltas: Path) -> list[dict]:
    return [json.loads(line) for line in (deltas / "edits.jsonl").read_text().splitlines()]


def test_a_resumed_run_reloads_the_edits_it_computed_and_holds_the_same_model(memory, tmp_path):
    memory.add_many([EIFFEL, FRANCE])
    first = _sync(memory, tmp_path / "deltas")
    assert [(r["held_before"], r["cached"]) for r in _log(tmp_path / "deltas")] == [(0, False), (1, False)]
    held = {q: _logits(first.backend, q) for q in (EIFFEL["prompt"], FRANCE["prompt"], "the capital of germany")}
    assert first.backend.score([(FRANCE["prompt"], "berlin")])[0].accuracy == 1.0

    again = _sync(memory, tmp_path / "deltas")  # a new process: the model as loaded, the same run folder
    assert [r["cached"] for r in _log(tmp_path / "deltas")] == [False, False, True, True]
    assert all(torch.equal(_logits(again.backend, q), v) for q, v in held.items())


def test_a_different_sequence_of_edits_is_computed_not_reloaded(memory, tmp_path):
    from agentedit.evaluation.lifelong import edit_seconds

    memory.add_many([FRANCE])
    _sync(memory, tmp_path / "deltas")
    memory.add_many([EIFFEL])  # the same store, a new edit after it
    _sync(memory, tmp_path / "deltas")
    assert [r["cached"] for r in _log(tmp_path / "deltas")] == [False, True, False]
    timing = edit_seconds(tmp_path / "deltas")
    assert timing["edits_computed"] == 2 and timing["edits_reloaded"] == 1 and timing["seconds_per_edit"] > 0


def test_lifelong_bench_runs_on_a_tiny_model_and_resumes_after_a_stop(tmp_path):
    from conftest import DATA_DIR

    bench = load_eval_script("lifelong_bench")
    model, tok = tiny_model("llama")
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    argv = ["--model", str(tmp_path / "tiny"), "--dataset", "counterfact-edit", "--edits", "3", "--curve", "2",
            "--curve-probe-cases", "1", "--methods", "grace", "--data-dir", str(DATA_DIR), "--out-dir", str(tmp_path),
            "--run-name", "ll"]
    assert bench.main(argv) == 0
    result = json.loads((tmp_path / "ll" / "lifelong.json").read_text())
    grace = {r["T"]: r for r in result["table"] if r["method"] == "grace"}
    assert set(grace) == {2, 3} and result["protocol"]["name"] == "wise-lifelong"
    assert grace[3]["edits_computed"] == 3  # the curve's first 2 edits are the run's first 2: reloaded, not recomputed
    assert grace[3]["seconds_per_edit"] > 0 and grace[3]["ms_per_probe"] > 0 and grace[3]["probes"] >= 3
    assert all(0.0 <= grace[t][k] <= 1.0 for t in grace for k in ("reliability", "locality"))
    assert (tmp_path / "ll" / "lifelong.md").is_file() and (tmp_path / "ll" / "lifelong.png").is_file()

    run = tmp_path / "ll" / "run"  # a stop before any probe was recorded: the rows are gone, the deltas are not
    packed = run / "cases.jsonl.gz"
    rows = gzip.decompress(packed.read_bytes()).decode().splitlines()
    packed.unlink()
    assert bench.main(argv) == 0
    again = {r["T"]: r for r in json.loads((tmp_path / "ll" / "lifelong.json").read_text())["table"]
             if r["method"] == "grace"}
    assert again[3]["edits_computed"] == 3  # nothing computed twice
    assert [{k: v for k, v in grace[t].items() if k not in ("ms_per_probe", "seconds_per_edit")} for t in (2, 3)] == \
        [{k: v for k, v in again[t].items() if k not in ("ms_per_probe", "seconds_per_edit")} for t in (2, 3)]
    assert len(rows) == len(gzip.decompress(packed.read_bytes()).decode().splitlines())

    # the report again, with a locality audit, from the run folder alone: no model is loaded, nothing is run again
    cases = {json.loads(line)["case_id"] for line in rows}
    audit = tmp_path / "my_audit.jsonl"
    audit.write_text("".join(json.dumps({"case_id": c, "label": "other"}) + "\n" for c in cases))
    report_only = ["--report-only", "--locality-audit", str(audit), "--model", str(tmp_path / "missing")]
    assert bench.main([*argv, *report_only]) == 0
    audited = json.loads((tmp_path / "ll" / "my_audit" / "lifelong.json").read_text())
    row = next(r for r in audited["table"] if r["method"] == "grace" and r["T"] == 3)
    assert row["audited_probes"] > 0 and row["reliability"] == again[3]["reliability"]
    assert row["collided_probes"] == 0 and row["locality_uncollided"] == row["locality"]  # no subject shared here
    assert audited["wall_s"] == json.loads((tmp_path / "ll" / "lifelong.json").read_text())["wall_s"]
    with pytest.raises(SystemExit, match="no finished run"):
        bench.main([*argv[:-1], "nothing-here", *report_only])


def test_whitebox_bench_times_grace_and_wise_per_edit_and_per_query_on_a_cpu(tmp_path):
    bench = load_eval_script("whitebox_bench")
    rc = bench.main(["--synthetic", "small", "--device", "cpu", "--methods", "grace,wise", "--sequential-edits", "2",
                     "--memit-batch", "1", "--rome-edits", "1", "--adapter-steps", "2", "--corpus-samples", "4",
                     "--corpus-length", "16", "--cache-dir", str(tmp_path / "stats"), "--out-dir", str(tmp_path),
                     "--run-name", "tiny"])
    assert rc == 0
    report = json.loads((tmp_path / "tiny" / "results.json").read_text())
    assert report["query_ms_unedited"] > 0
    for name in ("grace", "wise"):
        res = report["methods"][name]
        assert res["n_edits"] == 2 and res["protocol"] == "2 sequential" and res["seconds_per_edit"] > 0
        assert sorted(res["query_ms_by_edits"], key=int) == ["1", "2"] and min(res["query_ms_by_edits"].values()) > 0
    assert "after N sequential edits" in (tmp_path / "tiny" / "summary.md").read_text()


def test_the_locality_audit_leaves_out_probes_that_ask_the_edited_relation_and_refuses_bad_labels(tmp_path):
    bench = load_eval_script("lifelong_bench")
    audit = tmp_path / "audit.jsonl"
    audit.write_text("\n".join(json.dumps(r) for r in [{"case_id": "1", "label": "same"},
                                                        {"case_id": "2", "label": "other"},
                                                        {"case_id": "3", "label": "ambiguous"}]) + "\n")
    labels = bench.read_audit(str(audit), "zsre")
    rows = [{"method": "m", "size": "all", "kind": "locality", "case_id": c, "score": s}
            for c, s in (("1", 0.0), ("2", 1.0), ("2", 0.5), ("3", 0.0), ("4", 0.0))]
    rows.append({"method": "m", "size": "all", "kind": "reliability", "case_id": "2", "score": 0.0})
    assert bench.audited_locality(rows, labels, "m", "all") == [1.0, 0.5]  # case 4 is not in the audit: left out
    assert bench.audited_locality(rows, labels, "m", "10") == []
    assert bench.read_audit(None, "no-such-dataset") == {}
    audit.write_text(json.dumps({"case_id": "1", "label": "maybe"}) + "\n")
    with pytest.raises(SystemExit, match="audit.jsonl:1: label must be same, ambiguous or other"):
        bench.read_audit(str(audit), "zsre")


def test_editor_settings_on_the_command_line_take_their_fields_types_and_refuse_unknown_ones():
    bench = load_eval_script("lifelong_bench")
    wise = bench.editor_configs(["wise:shard_size=20,subspaces=4,mask_ratio=0.25"])["wise"]
    assert (wise.shard_size, wise.subspaces, wise.mask_ratio) == (20, 4, 0.25) and isinstance(wise.shard_size, int)
    assert bench.editor_configs(["grace:layer=3"])["grace"].layer == 3  # a field whose default is None
    with pytest.raises(SystemExit, match="wise has no setting 'shards'"):
        bench.editor_configs(["wise:shards=2"])


def test_the_harness_computes_key_statistics_over_the_text_the_settings_name(memory, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from agentedit.evaluation import parametric
    from agentedit.parametric.corpus import TextCorpus
    from agentedit.settings import Settings

    text = tmp_path / "facts.txt"
    text.write_text("The Eiffel Tower stands in Paris. Mount Fuji is in Japan.\n" * 40)
    model, tok = tiny_model("llama")
    ev = parametric.WeightSyncMethod("hf:unused", memory, "rome", backend=LocalBackend.from_model(model, tok),
                                     max_tokens=2, corpus=TextCorpus(text))
    assert ev.route.ctx.moments.corpus.id == TextCorpus(text).id  # not the default text sampled from the model
    made: dict = {}
    monkeypatch.setattr(parametric, "WeightSyncMethod", lambda *a, **kw: made.update(kw))
    ctx = SimpleNamespace(settings=Settings.from_env("hf:unused", stats_corpus=str(text)),
                          config=SimpleNamespace(max_tokens=2), out=tmp_path)
    parametric._make("rome", ctx, memory)
    assert made["corpus"].id == TextCorpus(text).id  # `agentedit eval` and lifelong_bench --stats-corpus reach the route
    made.clear()
    parametric._make("rome", SimpleNamespace(settings=Settings.from_env("hf:unused"), config=ctx.config, out=tmp_path),
                     memory)
    assert made["corpus"] is None


def test_locality_probes_about_a_subject_another_case_edits_are_counted_apart():
    """At T = 10,000 CounterFact probes one case's locality on a subject another case edits ("The twin city of Delhi
    is" probed for case a, Delhi edited by case b): such a probe is a collision, matched on whole words only."""
    from agentedit.evaluation.cases import Case, Probe, locality_collisions

    def case(cid: str, subject: str, locality: str) -> Case:
        return Case(cid, "cf", [{"subject": subject, "prompt": f"{subject} is in", "target_new": "X"}],
                    [Probe("reliability", f"{subject} is in", ["X"]), Probe("locality", locality, ["Y"])])

    a = case("a", "Coulman Island", "The twin city of Delhi is")
    b = case("b", "Delhi", "Vilnius is a twin city of")
    c = case("c", "The Shooting Star", "The language of Star Wars is")  # "Star" alone is not the subject
    d = case("d", "Vilnius", "Coulman Island is in")  # its own subject would not count, another case's does
    assert locality_collisions([a, b, c, d], [a, b, c, d]) == {"a", "b", "d"}
    assert locality_collisions([a, b, c, d], [a, c]) == {"d"}  # only what is in memory counts
    # a same-subject probe (ZsRE's locality) names its own subject, which another case may edit too: no collision
    e, f = case("e", "Terry Giddy", "The award received of Terry Giddy is"), case("f", "Terry Giddy", "Paris is in")
    assert locality_collisions([e], [e, f]) == set()
