"""Dataset declarations (agentedit/evaluation/schemas/*.yaml): the shipped ones give exactly what the hand-written
loaders gave on the shared files, the published shapes read small hand-made files, and a record that does not fit is
an error naming the record and the field."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agentedit.evaluation import DATASETS, EvalDataError, load_dataset
from agentedit.evaluation.loaders import register_file
from agentedit.evaluation.schema import SCHEMA_DIR, Declaration, builtin_names, load_declaration

sys.path.insert(0, str(Path(__file__).resolve().parent))
import legacy_loaders as legacy  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
HERE = Path(__file__).resolve().parent / "data" / "schemas"


@pytest.mark.parametrize("name,loader", [
    ("counterfact-edit", legacy.load_counterfact), ("zsre", legacy.load_zsre),
    ("wiki_counterfact", legacy.load_wiki_counterfact), ("counterfact-portability", legacy.load_counterfact_portability),
    ("mquake-hard", legacy.load_mquake), ("sanitation", legacy.load_sanitation),
])
def test_declarations_give_what_the_old_loaders_gave_on_the_shared_files(name, loader):
    path = DATA / DATASETS.get(name).path
    old = [c.to_dict() for c in loader(path)]
    new = [c.to_dict() for c in load_dataset(name, DATA)]
    assert len(new) == len(old) > 0
    assert new == old


def test_every_shared_file_has_a_declaration():
    declared = {d.file for d in map(load_declaration, builtin_names()) if d.file}
    shared = {str(p.relative_to(DATA)) for p in DATA.rglob("*.json")}
    assert shared <= declared, shared - declared
    assert "counterfact-train" not in DATASETS and "sanitation-train" not in DATASETS  # training files: never a test set


def test_zsre_mend_eval_shape():
    cases = load_declaration("zsre-mend").parse(HERE / "zsre_mend_eval.json")
    assert [c.case_id for c in cases] == ["0", "1"]
    first = cases[0]
    assert first.edits == [{"prompt": "What university did Watts Humphrey attend?", "subject": "Watts Humphrey",
                            "target_new": "University of Michigan", "target_old": "Illinois Institute of Technology"}]
    kinds = [(p.kind, p.targets) for p in first.probes]
    assert kinds == [("reliability", ["University of Michigan"]), ("generality", ["University of Michigan"]),
                     ("locality", ["Hugo Weaving"]), ("portability", ["Michigan"])]
    assert [p.kind for p in cases[1].probes] == ["reliability", "generality", "locality"]  # no portability: skipped
    assert all(p.style == "chat" for c in cases for p in c.probes)


@pytest.mark.parametrize("schema", ["mquake", "mquake-cf-3k", "mquake-t"])
def test_mquake_shapes_group_questions_by_case_and_fill_subjects(schema):
    cases = load_declaration(schema).parse(HERE / "mquake_cf_3k.json")
    assert [c.case_id for c in cases] == ["1", "2"] and [len(c.edits) for c in cases] == [2, 1]
    assert cases[0].edits[1]["prompt"] == "The name of the current head of state in Croatia is"
    assert cases[0].edits[0]["target_old"] == "United States of America"
    assert {p.group for p in cases[0].probes} == {"1"} and len(cases[0].probes) == 3
    assert cases[0].probes[0].targets == ["Norodom Sihamoni", "Sihamoni", "King Norodom Sihamoni"]


def test_rippleedits_categories_become_probes_with_aliases():
    cases = load_declaration("rippleedits").parse(HERE / "ripple_popular.json")
    first = cases[0]
    assert first.edits == [{"statement": "The name of the country of citizenship of Leonardo DiCaprio is Syria.",
                            "subject": None, "target_new": None, "target_old": None}]
    got = [(p.kind, p.subkind, p.targets) for p in first.probes]
    assert got == [("portability", "Compositionality_I", ["Damascus", "Dimashq", "Ash-Sham"]),
                   ("portability", "Subject_Aliasing", ["Syria", "Syrian Arab Republic"]),
                   ("portability", "Subject_Aliasing", ["Syria"]),
                   ("locality", "Relation_Specificity", ["Irmelin DiCaprio", "Irmelin Indenbirken"])]
    assert [(p.kind, p.subkind) for p in cases[1].probes] == [("locality", "Forgetfulness")]


def test_wiki_recent_reads_like_wiki_counterfact():
    [case] = load_declaration("wiki_recent").parse(HERE / "wiki_recent.json")
    assert case.dataset == "wiki_recent" and case.edits[0]["target_old"] == ""
    assert [(p.kind, p.subkind) for p in case.probes] == [("reliability", ""), ("portability", "Logical_Generalization"),
                                                          ("portability", "Reasoning"), ("locality", "Relation_Specificity")]
    assert case.probes[1].targets == ["no", "incorrect", "false"]


def test_a_new_shape_needs_only_a_declaration(tmp_path):
    name = register_file(HERE / "my_shape.jsonl", HERE / "my_shape.yaml", name="my-shape-test")
    try:
        cases = load_dataset(name)
        assert [c.case_id for c in cases] == ["a1", "a2"]
        assert [(p.kind, p.prompt, p.targets) for p in cases[0].probes] == [
            ("reliability", "Who wrote Dune?", ["Ursula K. Le Guin"]),
            ("generality", "Who wrote the Dune sequel?", ["Ursula K. Le Guin"]),
            ("locality", "Who wrote Emma?", ["Jane Austen"])]
        assert len(cases[1].probes) == 1
        with pytest.raises(EvalDataError, match="taken by"):
            register_file(HERE / "zsre_mend_eval.json", "zsre-mend", name="my-shape-test")
    finally:
        DATASETS._entries.pop(name, None)
        DATASETS._loaded.pop(name, None)


def test_records_that_do_not_fit_name_the_record_and_field(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"src": "q?", "alt": "a", "subject": "s"}, {"src": "q2?", "subject": "s"}]), "utf-8")
    with pytest.raises(EvalDataError, match=r"bad.json record 1: field 'alt' is missing or empty"):
        load_declaration("zsre-mend").parse(bad)
    bad.write_text(json.dumps([{"case_id": 3, "requested_rewrite": [], "questions": ["q"], "new_answer": "x"}]), "utf-8")
    with pytest.raises(EvalDataError, match=r"record 0: field 'requested_rewrite' must be a non-empty list"):
        load_declaration("mquake").parse(bad)
    bad.write_text(json.dumps({"data": []}), "utf-8")
    with pytest.raises(EvalDataError, match="expected a JSON list of objects"):
        load_declaration("mquake").parse(bad)
    rw = [{"prompt": "{} x", "subject": "S", "target_new": {"str": "T"}}]
    bad.write_text(json.dumps([{"requested_rewrite": rw, "questions": [], "new_answer": "T"}]), "utf-8")
    with pytest.raises(EvalDataError, match="record 0: no multihop probes"):
        load_declaration("mquake").parse(bad)


def test_malformed_declarations_are_clear_errors(tmp_path):
    with pytest.raises(EvalDataError, match="unknown key\\(s\\) promt"):
        Declaration.from_dict({"name": "x", "edits": {"prompt": "p", "target_new": "t"},
                               "probes": [{"kind": "reliability", "promt": "p"}]})
    with pytest.raises(EvalDataError, match="kind 'reliable' is not one of"):
        Declaration.from_dict({"name": "x", "edits": {"prompt": "p", "target_new": "t"},
                               "probes": [{"kind": "reliable", "prompt": "p"}]})
    with pytest.raises(EvalDataError, match="edits must map prompt and target_new"):
        Declaration.from_dict({"name": "x", "edits": {"prompt": "p"}, "probes": [{"kind": "reliability", "prompt": "p"}]})
    with pytest.raises(EvalDataError, match="unknown dataset declaration 'nope'.*zsre-mend"):
        load_declaration("nope")
    loop = tmp_path / "loop.yaml"
    loop.write_text("name: loop\nextends: nope-base\n", "utf-8")
    with pytest.raises(EvalDataError, match="extends unknown declaration 'nope-base'"):
        load_declaration(loop)


def test_declarations_ship_inside_the_package():
    assert SCHEMA_DIR.parent.name == "evaluation" and SCHEMA_DIR.parent.parent.name == "agentedit"
    assert {"zsre-mend", "rippleedits", "mquake-cf-3k", "mquake-t", "wiki_recent"} <= set(builtin_names())
    for name in builtin_names():  # every shipped declaration is well-formed
        assert load_declaration(name).name == name
