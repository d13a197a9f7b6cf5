"""The trained scope checker: relation recovery, training pairs, training, and the checker's decisions."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from agentedit.errors import ConfigError, ScopeError
from agentedit.types import Candidate
from agentedit.records import build_record
from agentedit.scope import make_checker
from agentedit.scope.trained import META_FILE, TrainedChecker
from agentedit.scope.training import question_forms, relation_clusters, train_scope_model, training_pairs
from scope_cases import HAND_MADE




def test_relations_are_recovered_through_locality_prompts() -> None:
    cases = relation_clusters(HAND_MADE)
    assert [c.template for c in cases] == ["The mother tongue of X is", "X is a native speaker of", "X was born in", "X works for"]
    # Alice's locality prompt uses Carol's template (and Carol's uses Alice's): one relation, two templates.
    assert cases[0].relation == cases[1].relation
    assert len({cases[0].relation, cases[2].relation, cases[3].relation}) == 3
    assert cases[0].rephrase == "X grew up speaking"
    assert cases[2].rephrase == "The birthplace of X is"


def test_training_pairs_are_positive_within_a_relation_and_negative_across(embedder) -> None:
    cases = relation_clusters(HAND_MADE)
    relation_of = {c.template: c.relation for c in cases}
    query_relation = {c.rephrase: c.relation for c in cases} | relation_of
    pairs = training_pairs(cases, embedder, rng=random.Random(0), questions=False)
    assert {y for _, _, y in pairs} == {0, 1}
    for q, t, y in pairs:
        assert (query_relation[q] == relation_of[t]) == bool(y), (q, t, y)
    # The language relation's paraphrase is paired with both of its templates.
    positives = {t for q, t, y in pairs if y and q == "X grew up speaking"}
    assert positives == {"The mother tongue of X is", "X is a native speaker of"}


@pytest.mark.parametrize("template,forms", [
    ("The mother tongue of X is", ["What is the mother tongue of X?", "What is X's mother tongue?"]),
    ("X's profession is an", ["What is X's profession?", "What is the profession of X?"]),
    ("X, which is located in", ["What is X located in?"]),
    ("X, a citizen of", ["What is X a citizen of?"]),
    ("X, who plays", ["What does X play?"]),
    ("X works for", ["What does X work for?"]),
    ("X passed away in", ["X passed away in what?"]),
    ("What is the twin city of X? It is", ["What is the twin city of X?"]),
    ("X, the", []),
])
def test_question_forms_of_completion_templates(template: str, forms: list[str]) -> None:
    assert question_forms(template) == forms


def test_question_forms_join_their_relation_on_both_sides(embedder) -> None:
    cases = relation_clusters(HAND_MADE)
    relation_of = {c.template: c.relation for c in cases}
    for c in cases:
        relation_of.update({q: c.relation for q in question_forms(c.template)})
    query_relation = {c.rephrase: c.relation for c in cases} | relation_of
    pairs = training_pairs(cases, embedder, rng=random.Random(0))
    for q, t, y in pairs:
        assert (query_relation[q] == relation_of[t]) == bool(y), (q, t, y)
    questions = {"What is the mother tongue of X?", "What was X born in?", "What does X work for?"}
    assert questions <= {q for q, _, _ in pairs}  # asked as queries
    assert questions & {t for _, t, _ in pairs}  # and stored as edit relations


def test_bad_training_data_fails_and_writes_nothing(tmp_path: Path, embedder) -> None:
    out = tmp_path / "scope-model"
    with pytest.raises(ScopeError, match="not found"):
        train_scope_model(tmp_path / "missing.json", out, embedder)
    bad = tmp_path / "bad.json"
    bad.write_text("[{\"prompt\": 1}", encoding="utf-8")
    with pytest.raises(ScopeError, match="not valid JSON"):
        train_scope_model(bad, out, embedder)
    few = tmp_path / "few.json"
    few.write_text(json.dumps(HAND_MADE), encoding="utf-8")
    with pytest.raises(ScopeError, match="need at least 50"):
        train_scope_model(few, out, embedder)
    assert not out.exists() and not (tmp_path / "scope-model.tmp").exists()


def test_trained_checker_needs_its_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="train-scope"):
        make_checker("trained", model_dir=tmp_path / "nothing-here")
    with pytest.raises(ConfigError, match="train-scope"):
        make_checker("trained")


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory, counterfact_slice: Path, embedder) -> Path:
    out = tmp_path_factory.mktemp("trained") / "scope-model"
    report = train_scope_model(counterfact_slice, out, embedder, minutes=0.4, batch_size=16, seed=1)
    assert report.steps > 0 and 0.0 <= report.threshold <= 1.0
    return out


def test_training_writes_a_loadable_model_with_its_calibration(trained_dir: Path) -> None:
    meta = json.loads((trained_dir / META_FILE).read_text("utf-8"))
    assert meta["data"] and len(meta["data_sha256"]) == 64
    assert meta["heldout_specificity"] >= 0.9  # the threshold was chosen for 0.98 on the held-back slice
    assert meta["n_train_pairs"] > meta["n_heldout_pairs"] > 0
    assert (trained_dir / "model.safetensors").exists()
    assert not trained_dir.with_name("scope-model.tmp").exists()


def test_trained_checker_gates_on_the_subject_and_scores_the_relation(trained_dir: Path) -> None:
    checker = make_checker("trained", model_dir=trained_dir, max_edits=1)
    assert isinstance(checker, TrainedChecker)
    edit = Candidate(build_record({"id": "e1", "prompt": "The mother tongue of Danielle Darrieux is",
                                   "subject": "Danielle Darrieux", "target_new": "English"}), 0.9)
    other = Candidate(build_record({"id": "e2", "prompt": "Danielle Darrieux was born in", "subject": "Danielle Darrieux",
                                    "target_new": "Rome"}), 0.8)
    [d] = checker.check("The mother tongue of Michel Rocard is", [edit])
    assert not d.in_scope and "does not name" in d.reason
    [(named, prob)] = checker.scores("The mother tongue of danielle darrieux is", [edit])
    assert named == "danielle darrieux" and prob is not None and 0.0 <= prob <= 1.0  # the spelling the query uses, normalised
    decisions = checker.check("The mother tongue of Danielle Darrieux is", [edit, other])
    assert all("relation probability" in d.reason for d in decisions)
    assert sum(d.in_scope for d in decisions) <= 1  # max_edits caps what is accepted
    # A statement edit with no subject falls back to the similarity threshold.
    loose = Candidate(build_record({"id": "e3", "statement": "Paris hosts the office."}), 0.99)
    [d3] = checker.check("Where is the office?", [loose])
    assert d3.in_scope and "no subject" in d3.reason
