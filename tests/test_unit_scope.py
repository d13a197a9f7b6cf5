"""Unit tests of agentedit.scope: thresholds, checkers, the judge and calibration."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from agentedit.errors import BackendError, ConfigError, ScopeError
from agentedit.types import Candidate
from agentedit.records import build_record
from agentedit.scope import (CascadeChecker, JudgeChecker, RejectAllChecker, RelationChecker, ScopeChecker,
                             SimilarityChecker, TopKChecker, calibrate_similarity, choose_threshold, make_checker,
                             parse_verdict)
from agentedit.scope.contrast import relation_conflict
from agentedit.scope.calibration import scope_pairs
from agentedit.scope.relation import VETO
from agentedit.scope.text import find_subject, mask_subject, name_variants, relation_text


def _cand(edit_id: str, sim: float, **fields) -> Candidate:
    data = fields or {"statement": f"Fact {edit_id}."}
    return Candidate(build_record({**data, "id": edit_id}), sim)


DARRIEUX = {"prompt": "The mother tongue of Danielle Darrieux is", "subject": "Danielle Darrieux", "target_new": "English"}


# -- choose_threshold --------------------------------------------------------------------------------
def test_recall_at_specificity_known_answer() -> None:
    neg = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    pos = np.array([0.55, 0.85, 0.92, 0.99])
    t = choose_threshold(pos, neg, "recall@specificity", 0.8)
    assert t == pytest.approx(0.8 + 1e-6)  # exactly 8 of 10 negatives fall below it
    assert np.mean(neg < t) == 0.8 and np.mean(pos >= t) == 0.75
    t9 = choose_threshold(pos, neg, "recall@specificity", 0.9)
    assert t9 == pytest.approx(0.9 + 1e-6)
    assert np.mean(neg < t9) >= 0.9


def test_recall_at_specificity_rounds_up_the_negatives_needed() -> None:
    neg = np.array([0.1, 0.2, 0.3])
    # 0.5 * 3 = 1.5 negatives -> at least 2 must be rejected.
    assert choose_threshold(np.array([0.9]), neg, "recall@specificity", 0.5) == pytest.approx(0.2 + 1e-6)


def test_balanced_accuracy_and_f1_known_answers() -> None:
    pos, neg = np.array([0.4, 0.9]), np.array([0.5])
    # t=0.4: recall 1, specificity 0 -> BA .5, F1 .8; t just above 0.5: recall .5, specificity 1 -> BA .75, F1 .667
    assert choose_threshold(pos, neg, "balanced-accuracy") == pytest.approx(0.5 + 1e-6)
    assert choose_threshold(pos, neg, "f1") == pytest.approx(0.4)


def test_separable_data_gets_a_perfect_threshold() -> None:
    pos, neg = np.array([0.6, 0.7, 0.8]), np.array([0.1, 0.2, 0.3])
    for objective in ("balanced-accuracy", "f1"):
        t = choose_threshold(pos, neg, objective)  # type: ignore[arg-type]
        assert np.all(pos >= t) and np.all(neg < t)


def test_choose_threshold_errors() -> None:
    with pytest.raises(ScopeError, match="both in-scope and out-of-scope"):
        choose_threshold(np.array([]), np.array([0.1]))
    with pytest.raises(ScopeError, match="target specificity must be in"):
        choose_threshold(np.array([0.5]), np.array([0.1]), "recall@specificity", 1.0)
    with pytest.raises(ScopeError, match="unknown calibration objective 'accuracy'"):
        choose_threshold(np.array([0.5]), np.array([0.1]), "accuracy")  # type: ignore[arg-type]


# -- similarity / top-k / none -----------------------------------------------------------------------
def test_similarity_checker_accepts_at_threshold_and_rejects_below() -> None:
    chk = SimilarityChecker(0.7)
    decisions = chk.check("q", [_cand("below", 0.69999), _cand("at", 0.7), _cand("above", 0.9)])
    assert [(d.edit_id, d.in_scope) for d in decisions] == [("above", True), ("at", True), ("below", False)]
    assert all(d.checker == "similarity" for d in decisions)
    assert ">= 0.700" in decisions[1].reason and "< 0.700" in decisions[2].reason
    assert decisions[0].similarity == 0.9


def test_similarity_checker_max_edits_keeps_the_nearest() -> None:
    chk = SimilarityChecker(0.5, max_edits=2)
    decisions = chk.check("q", [_cand("a", 0.6), _cand("b", 0.95), _cand("c", 0.8), _cand("d", 0.3)])
    assert [d.edit_id for d in decisions if d.in_scope] == ["b", "c"]
    assert len(decisions) == 4


def test_similarity_checker_threshold_range() -> None:
    with pytest.raises(ScopeError, match="must be in \\[-1, 1\\]"):
        SimilarityChecker(1.5)


def test_topk_and_reject_all() -> None:
    cands = [_cand("a", 0.1), _cand("b", 0.5), _cand("c", 0.3)]
    top = TopKChecker(2).check("q", cands)
    assert [(d.edit_id, d.in_scope) for d in top] == [("b", True), ("c", True), ("a", False)]
    none = RejectAllChecker().check("q", cands)
    assert [d.in_scope for d in none] == [False, False, False] and none[0].checker == "none"
    assert isinstance(TopKChecker(), ScopeChecker)


def test_acheck_matches_check() -> None:
    cands = [_cand("a", 0.8), _cand("b", 0.2)]
    chk = SimilarityChecker(0.5)
    got = asyncio.run(chk.acheck("q", cands))
    assert [(d.edit_id, d.in_scope) for d in got] == [("a", True), ("b", False)]


# -- relation checker ---------------------------------------------------------------------------------
def test_relation_helpers() -> None:
    rec = build_record({**DARRIEUX, "aliases": ["Mlle Darrieux"]})
    assert relation_text(rec) == "The mother tongue of X is"
    assert find_subject("what's DANIELLE darrieux's mother tongue?", ["Danielle Darrieux"]) == "danielle darrieux"
    assert find_subject("What about Danielle Darrieuxs?", ["Danielle Darrieux"]) is None  # whole words only
    assert mask_subject("Where was danielle-darrieux born?", "Danielle Darrieux") == "Where was X born?"


@pytest.mark.parametrize("name, query, spelling", [
    ("Martín Solares", "The occupation of Martin Solares is", "martin solares"),       # diacritics
    ("Stanislav Rössler", "stanislav rossler's occupation is", "stanislav rossler"),   # and possessive
    ("Jose L Castillo", "The gender of Jose Castillo is", "jose castillo"),            # middle initial dropped
    ("G.L. Defer", "G. L. Defer works as", "gl defer"),                                # initials, any punctuation
    ("The Beatles", "Who managed Beatles?", "beatles"),                                # leading article
    ("Saint Petersburg", "The twin city of St. Petersburg is", "st petersburg"),       # common abbreviation
    ("United States Navy", "Who leads the US Navy?", "us navy"),
])
def test_subject_aliases_are_found(name: str, query: str, spelling: str) -> None:
    assert spelling in name_variants(name)
    assert find_subject(query, [name]) == spelling
    assert "X" in mask_subject(query, spelling)


def test_subject_variants_do_not_overreach() -> None:
    assert find_subject("The occupation of Jose Castro is", ["Jose L Castillo"]) is None
    assert find_subject("Who is the canton of Orcieres in?", ["canton of Orcières"]) == "canton of orcieres"
    assert "canton orcieres" not in name_variants("canton of Orcières")  # only single letters count as initials
    assert find_subject("Saint Lucia is an island", ["Saint Petersburg"]) is None


def test_relation_checker_decisions(embedder) -> None:
    chk = RelationChecker(embedder, relation_threshold=0.8, fallback_threshold=0.7)
    edit = _cand("tongue", 0.6, **DARRIEUX, aliases=["Mademoiselle Darrieux"])

    def decide(query: str) -> bool:
        [d] = chk.check(query, [edit])
        assert d.checker == "relation"
        return d.in_scope

    assert decide("What is the mother tongue of Danielle Darrieux?") is True
    assert decide("What is the mother tongue of Catherine Deneuve?") is False
    assert decide("Where was Danielle Darrieux born?") is False
    assert decide("What is the mother tongue of Mademoiselle Darrieux?") is True


@pytest.mark.parametrize("query,edit,conflict", [
    ("The name of the mother of X is", "The name of the father of X is", True),
    ("The occupation of X is", "The name of the employer of X is", True),
    ("Who employs X?", "X works as", True),  # the employer asked with the verb, the occupation edited
    ("Which company employs X?", "X works for", False),
    ("X is located in the continent", "Which country is X in?", True),
    ("X follows", "X is followed by", True),
    ("What does X follow?", "X is followed by", True),
    ("X is followed by", "What is followed by X?", True),
    ("What follows X?", "X is followed by", False),  # the same fact asked from the other end
    ("Who developed X?", "X, developed by", False),
    ("Where X is from, people speak the language of", "The mother tongue of X is", False),  # mother tongue = language
    ("Who is X's mom?", "The name of the mother of X is", False),
    ("X is a citizen of", "What is the country of citizenship of X?", False),  # only one side names an attribute
    ("The place of birth of X is", "At what location did X die?", True),  # birth against death
    ("Where was X buried?", "X was born in", True),
    ("Which lady gave birth to X?", "Who is X's mother?", False),  # birth only contrasts with death
    ("The manufacturer of X is", "What year was X made?", True),  # the edit asks a time, the query none
    ("X manufacturer", "When was X made?", True),
    ("In which year was X made?", "What year was X made?", False),
    ("The UTC offset of X is", "What time zone is X in?", False),  # a time zone is a place, not a time
    ("Who are X's kids?", "The name of the mother of X is", True),
    ("When does X arrive?", "X departs at", True),  # a trip's two times
    ("How late is X open?", "X closes at", False),  # open and close are no contrast: this asks the closing time
    ("X was made in", "What year was X made?", False),  # a date may follow "in"
    ("Where did X live when he died?", "What city did X live in when he died?", False),  # "when" as a conjunction
    ("When does X open?", "X opens on", False),  # a time asked by the question only: the edit's answer settles it
])
def test_relation_conflicts(query: str, edit: str, conflict: bool) -> None:
    assert bool(relation_conflict(query, edit)) is conflict


def test_relation_checker_vetoes_a_contrasting_relation(embedder) -> None:
    """Embeddings put mother and father side by side; the contrast veto keeps the father's edit off the mother's question."""
    chk = RelationChecker(embedder, relation_threshold=0.5, fallback_threshold=0.7)
    edit = _cand("father", 0.9, prompt="The name of the father of Zhou Zhengzi is", subject="Zhou Zhengzi", target_new="Li Wei")
    [named, score] = chk.scores("The name of the mother of Zhou Zhengzi is", [edit])[0]
    assert named and score == VETO
    [d] = chk.check("The name of the mother of Zhou Zhengzi is", [edit])
    assert not d.in_scope and "asks mother, the edit is about father" in d.reason
    assert chk.check("Who was the father of Zhou Zhengzi?", [edit])[0].in_scope


def test_relation_checker_reasons_and_fallback(embedder) -> None:
    chk = RelationChecker(embedder, relation_threshold=0.8, fallback_threshold=0.7, max_edits=4)
    other = chk.check("What is the mother tongue of Catherine Deneuve?", [_cand("tongue", 0.6, **DARRIEUX)])
    assert other[0].reason == "query does not name 'Danielle Darrieux'"
    no_subject = chk.check("anything", [_cand("s1", 0.75), _cand("s2", 0.65)])
    assert [(d.edit_id, d.in_scope) for d in no_subject] == [("s1", True), ("s2", False)]
    assert "no subject" in no_subject[0].reason


def test_relation_checker_max_edits(embedder) -> None:
    chk = RelationChecker(embedder, relation_threshold=0.8, fallback_threshold=0.5, max_edits=1)
    decisions = chk.check("q", [_cand("a", 0.9), _cand("b", 0.95)])
    assert [(d.edit_id, d.in_scope) for d in decisions] == [("b", True), ("a", False)]


# -- judge ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reply,verdict", [
    ("Yes.", True), ("yes", True), ("**Yes**", True), ('"yes"', True), ("Y", True), ("True", True),
    ("Yes, it does.", True), ("no", False), ("No.", False), ("'NO'", False), ("false", False),
    ("", None), ("   ", None), ("Maybe", None), ("yesterday", None), ("I think yes", None),
])
def test_parse_verdict(reply: str, verdict: bool | None) -> None:
    assert parse_verdict(reply) is verdict


@pytest.mark.parametrize("reply,in_scope,reason", [
    ("Yes.", True, "judge said yes"),
    ("no", False, "judge said no"),
    ("The capital of France", False, "judge reply not yes/no"),
    (BackendError("server down"), False, "judge failed: server down"),
])
def test_judge_checker_replies(make_backend, reply, in_scope: bool, reason: str) -> None:
    backend = make_backend(reply)
    chk = JudgeChecker(backend)
    [d] = chk.check("Where is the Eiffel Tower?", [_cand("e1", 0.8, statement='The Eiffel Tower is in "Rome".')])
    assert d.in_scope is in_scope and d.checker == "judge"
    assert d.reason.startswith(reason)
    [(method, messages, params)] = backend.calls
    assert method == "chat" and params == {"max_tokens": 3, "temperature": 0.0}
    assert len(messages) == 1 and messages[0]["role"] == "user"
    content = messages[0]["content"]
    assert 'Fact (quoted data): "The Eiffel Tower is in \\"Rome\\"."' in content
    assert 'Question (quoted data): "Where is the Eiffel Tower?"' in content


def test_judge_async_path_and_failure_is_not_raised(make_backend) -> None:
    backend = make_backend(BackendError("timeout"))
    chk = JudgeChecker(backend)
    decisions = asyncio.run(chk.acheck("q", [_cand("a", 0.9), _cand("b", 0.8)]))
    assert [d.in_scope for d in decisions] == [False, False]
    assert [c[0] for c in backend.calls] == ["achat", "achat"]


def test_judge_skips_low_similarity_and_caps(make_backend) -> None:
    backend = make_backend("yes")
    chk = JudgeChecker(backend, min_similarity=0.5, max_candidates=2, max_edits=1)
    decisions = chk.check("q", [_cand("low", 0.2), _cand("a", 0.9), _cand("b", 0.8), _cand("c", 0.7)])
    assert len(backend.calls) == 2
    by_id = {d.edit_id: d for d in decisions}
    assert by_id["a"].in_scope and not by_id["b"].in_scope and "over max_edits" in by_id["b"].reason
    assert not by_id["low"].in_scope and not by_id["c"].in_scope
    assert by_id["low"].reason.startswith("not judged")


def test_cascade_calls_the_judge_only_for_the_ambiguous_band(make_backend) -> None:
    backend = make_backend("yes")
    chk = CascadeChecker(JudgeChecker(backend), low=0.4, high=0.8)
    cands = [_cand("clear-in", 0.85), _cand("edge-high", 0.8), _cand("mid1", 0.6), _cand("edge-low", 0.4),
             _cand("clear-out", 0.39)]
    decisions = chk.check("q", cands)
    assert len(backend.calls) == 2  # mid1 and edge-low only
    judged = [c[1][0]["content"] for c in backend.calls]
    assert any('"Fact mid1."' in m for m in judged) and any('"Fact edge-low."' in m for m in judged)
    assert [(d.edit_id, d.in_scope) for d in decisions] == [
        ("clear-in", True), ("edge-high", True), ("mid1", True), ("edge-low", True), ("clear-out", False)]
    assert all(d.checker == "cascade" for d in decisions)


def test_cascade_no_judge_call_without_ambiguous_candidates(make_backend) -> None:
    backend = make_backend("yes")
    chk = CascadeChecker(JudgeChecker(backend), low=0.4, high=0.8, max_edits=1)
    decisions = asyncio.run(chk.acheck("q", [_cand("a", 0.9), _cand("b", 0.95), _cand("c", 0.1)]))
    assert backend.calls == []
    assert [(d.edit_id, d.in_scope) for d in decisions] == [("b", True), ("a", False), ("c", False)]


def test_cascade_empty_band_is_refused(make_backend) -> None:
    with pytest.raises(ScopeError, match="cascade band is empty"):
        CascadeChecker(JudgeChecker(make_backend()), low=0.9, high=0.1)


# -- calibration ----------------------------------------------------------------------------------------
def test_calibration_meets_target_specificity(calibration, counterfact_cases, embedder) -> None:
    assert calibration.n_cases == 100
    assert calibration.n_positive == 200 and calibration.n_negative == 100
    assert calibration.specificity >= 0.98
    assert 0.0 < calibration.recall <= 1.0
    assert calibration.band_low <= calibration.threshold <= calibration.band_high
    assert calibration.data_sha256 and calibration.embedder == "all-MiniLM-L6-v2"
    pos, neg = scope_pairs(counterfact_cases, embedder)
    assert np.mean(neg < calibration.threshold) >= 0.98  # recomputed independently on the same data
    assert np.mean(pos >= calibration.threshold) == pytest.approx(calibration.recall, abs=1e-3)


def test_calibration_other_objective_and_target(counterfact_slice: Path, embedder) -> None:
    cal = calibrate_similarity(counterfact_slice, embedder, n_cases=25, target_specificity=0.9)
    assert cal.n_cases == 25 and cal.specificity >= 0.9
    ba = calibrate_similarity(counterfact_slice, embedder, n_cases=25, objective="balanced-accuracy")
    assert ba.objective == "balanced-accuracy" and ba.target_specificity is None
    assert ba.balanced_accuracy >= cal.balanced_accuracy - 1e-9


def test_calibration_errors(tmp_path: Path, embedder, counterfact_cases) -> None:
    with pytest.raises(ScopeError, match="not found"):
        calibrate_similarity(tmp_path / "missing.json", embedder)
    few = tmp_path / "few.json"
    few.write_text(json.dumps(counterfact_cases[:10]), "utf-8")
    with pytest.raises(ScopeError, match="has 10 usable cases.*need at least 20"):
        calibrate_similarity(few, embedder)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", "utf-8")
    with pytest.raises(ScopeError, match="not valid JSON"):
        calibrate_similarity(bad, embedder)


# -- make_checker ---------------------------------------------------------------------------------------
def test_make_checker_by_name(calibration, embedder, make_backend) -> None:
    with pytest.raises(ConfigError, match="unknown scope checker 'cosine'"):
        make_checker("cosine")
    assert isinstance(make_checker("none"), RejectAllChecker)
    assert isinstance(make_checker("prefix-all"), TopKChecker)
    sim = make_checker("similarity", calibration=calibration, max_edits=2)
    assert isinstance(sim, SimilarityChecker) and sim.threshold == calibration.threshold and sim.max_edits == 2
    rel = make_checker("relation", calibration=calibration, embedder=embedder)
    assert isinstance(rel, RelationChecker) and rel.relation_threshold == calibration.relation_threshold
    cas = make_checker("cascade", calibration=calibration, backend=make_backend())
    assert isinstance(cas, CascadeChecker) and (cas.low, cas.high) == (calibration.band_low, calibration.band_high)
    with pytest.raises(ConfigError, match="needs the memory's embedder"):
        make_checker("relation", calibration=calibration)
    with pytest.raises(ConfigError, match="needs a model backend"):
        make_checker("judge", calibration=calibration)


def test_shipped_default_calibration_is_loadable() -> None:
    # make_checker("similarity") without a calibration (what a fresh, never-calibrated store uses)
    # reads agentedit/scope/default_calibration.json.
    chk = make_checker("similarity")
    assert isinstance(chk, SimilarityChecker) and 0.0 < chk.threshold < 1.0


def test_a_query_naming_several_subjects_is_checked_per_subject(embedder) -> None:
    chk = RelationChecker(embedder, relation_threshold=0.639, fallback_threshold=0.812)
    tongue = _cand("tongue", 0.7, **DARRIEUX)
    citizen = _cand("citizen", 0.6, prompt="Michel Rocard is a citizen of", subject="Michel Rocard", target_new="Spain")
    rocard_tongue = _cand("rocard-tongue", 0.6, prompt="The mother tongue of Michel Rocard is", subject="Michel Rocard",
                          target_new="German")
    query = "What is the mother tongue of Danielle Darrieux, and which country is Michel Rocard a citizen of?"
    accepted = {d.edit_id for d in chk.check(query, [tongue, citizen, rocard_tongue]) if d.in_scope}
    assert accepted == {"tongue", "citizen"}  # both questions get their edit; Rocard's tongue is not asked
    both = "What are the mother tongues of Danielle Darrieux and Michel Rocard?"
    assert {d.edit_id for d in chk.check(both, [tongue, citizen, rocard_tongue]) if d.in_scope} == {"tongue", "rocard-tongue"}
