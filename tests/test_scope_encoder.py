"""The tuned relation encoder of the ``trained`` checker (``train-scope --kind encoder``): its training texts, its
loss, a real (short) training run on a CounterFact slice, the checker it gives, and failures that write nothing."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from agentedit.errors import ConfigError, ScopeError
from agentedit.records import build_record
from agentedit.scope import make_checker
from agentedit.scope.encoder_training import FRAMINGS, relation_texts, supcon_loss, train_relation_encoder
from agentedit.scope.trained import META_FILE
from agentedit.scope.training import relation_clusters
from agentedit.scope.tuned import TunedRelationChecker
from agentedit.types import Candidate
from scope_cases import HAND_MADE, cf_case




def test_relation_texts_hold_templates_paraphrases_questions_and_framed_questions() -> None:
    texts = relation_texts(relation_clusters(HAND_MADE), random.Random(0))
    assert len(texts) == 3  # the two language templates are one relation (linked by the locality prompts)
    language = next(t for t in texts.values() if "The mother tongue of X is" in t)
    assert {"X is a native speaker of", "X grew up speaking", "What is the mother tongue of X?"} <= set(language)
    framed = [t for t in language if any(t != f.format(t) and f.replace("{}", "") in t for f in FRAMINGS)]
    assert framed and all("X" in t for t in language)
    birth = next(t for t in texts.values() if "X was born in" in t)
    assert not set(birth) & set(language)
    plain = relation_texts(relation_clusters(HAND_MADE), random.Random(0), framed=False)
    assert sum(map(len, plain.values())) < sum(map(len, texts.values()))


def test_supcon_loss_is_lower_when_each_relation_is_clustered() -> None:
    import torch

    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0]]), dim=-1)
    mixed = clustered[[0, 2, 1, 3]]
    assert supcon_loss(clustered, labels, 0.1).item() < supcon_loss(mixed, labels, 0.1).item()


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory, counterfact_slice: Path, embedder) -> Path:
    out = tmp_path_factory.mktemp("tuned") / "scope-model"
    report = train_relation_encoder(counterfact_slice, out, embedder, steps=4, relations_per_batch=4, texts_per_relation=2,
                                    seed=1)
    assert report.kind == "encoder" and report.steps == 4
    return out


def test_training_writes_an_encoder_with_its_calibration(encoder_dir: Path) -> None:
    meta = json.loads((encoder_dir / META_FILE).read_text("utf-8"))
    assert meta["kind"] == "encoder" and len(meta["data_sha256"]) == 64
    assert meta["heldout_specificity"] >= 0.9 and 0.0 < meta["heldout_auc"] <= 1.0
    assert (encoder_dir / "model.safetensors").exists() and (encoder_dir / "config_sentence_transformers.json").exists()
    assert not encoder_dir.with_name("scope-model.tmp").exists()


def test_trained_checker_over_the_encoder_scores_clauses_and_gates_the_subject(encoder_dir: Path) -> None:
    checker = make_checker("trained", model_dir=encoder_dir)
    assert isinstance(checker, TunedRelationChecker)
    edit = Candidate(build_record({"id": "e1", "prompt": "The mother tongue of Danielle Darrieux is",
                                   "subject": "Danielle Darrieux", "target_new": "English"}), 0.9)
    [(named, asked)] = checker.scores("What language did Danielle Darrieux grow up speaking?", [edit])
    [(_, other)] = checker.scores("Which city was Danielle Darrieux born in?", [edit])
    assert named == "danielle darrieux" and asked is not None and other is not None and asked > other
    [d] = checker.check("What language does Michel Rocard speak?", [edit])
    assert not d.in_scope and "does not name" in d.reason
    [d] = checker.check("When did Danielle Darrieux die, and what is her mother tongue?", [edit])
    assert "tuned relation similarity" in d.reason  # the clause version: the second clause is scored


def test_a_failed_save_keeps_the_previous_model(encoder_dir: Path, counterfact_slice: Path, embedder,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    before = (encoder_dir / META_FILE).read_text("utf-8")
    from sentence_transformers import SentenceTransformer

    def broken(self, path, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(SentenceTransformer, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        train_relation_encoder(counterfact_slice, encoder_dir, embedder, steps=1, relations_per_batch=2, texts_per_relation=2)
    assert (encoder_dir / META_FILE).read_text("utf-8") == before
    assert not encoder_dir.with_name("scope-model.tmp").exists()


def test_bad_training_input_is_refused_before_anything_is_written(tmp_path: Path, embedder) -> None:
    out = tmp_path / "scope-model"
    with pytest.raises(ScopeError, match="not found"):
        train_relation_encoder(tmp_path / "missing.json", out, embedder)
    few = tmp_path / "few.json"
    few.write_text(json.dumps(HAND_MADE + [cf_case("Ann Lee works for", "Ann Lee", "Ann Lee is employed by", "Bo Li works for")]),
                   "utf-8")
    with pytest.raises(ScopeError, match="at least 50"):
        train_relation_encoder(few, out, embedder)
    assert not out.exists() and not out.with_name("scope-model.tmp").exists()


def test_the_editor_refuses_an_unknown_kind(tmp_path: Path) -> None:
    from agentedit.editor import Editor

    with Editor("openai/not-called", store="s", store_dir=tmp_path) as ed:
        with pytest.raises(ConfigError, match="unknown scope model kind"):
            ed.train_scope(tmp_path / "any.json", kind="bm25")
        assert not ed.scope_model_dir.exists()
