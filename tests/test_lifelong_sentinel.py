"""RECIPE's knowledge sentinel as a scope checker: trained on a slice of the CounterFact training file with the real
embedder, saved with the store, loaded by name; evaluation splits and a missing sentinel are refused clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agentedit.errors import ConfigError
from agentedit.scope import make_checker
from agentedit.scope.sentinel import SentinelModel, recipe_dir
from agentedit.scope.sentinel_training import load_cases, train_sentinel
from agentedit.types import Candidate
from conftest import DATA_DIR

TRAIN = DATA_DIR / "counterfact" / "counterfact-train.json"


def test_trained_sentinel_separates_its_training_cases_and_serves_as_a_checker(tmp_path, memory, embedder):
    cases = json.loads(TRAIN.read_text("utf-8"))[:80]
    small = tmp_path / "cf-train-slice.json"
    small.write_text(json.dumps(cases))
    model = train_sentinel(small, embedder, n_cases=80, epochs=30, batch=32, lr=3e-3, heldout=0.25)
    assert model.meta["n_train_cases"] == 60 and 0.0 <= model.meta["heldout_recall"] <= 1.0
    assert model.meta["embedder"] == embedder.name and model.meta["device"] in ("cpu", "cuda")

    model.save(recipe_dir(memory.dir / "scope-model"))
    checker = make_checker("sentinel", embedder=embedder, model_dir=memory.dir / "scope-model")
    recs = memory.add_many([{"prompt": c["prompt"], "subject": c["subject"], "target_new": c["target_new"]}
                            for c in cases[:30]])
    own = in_scope = out_scope = 0
    for c, rec in zip(cases[:30], recs):  # training cases: the learned maps and sentinel must separate them
        cands = [Candidate(r, 0.0) for r in recs]
        accepted = {d.edit_id for d in checker.check(c["rephrase_prompt"], cands) if d.in_scope}
        own += rec.id in accepted
        in_scope += bool(accepted)
        out_scope += any(d.in_scope for d in checker.check(c["locality_prompt"], cands))
    assert own >= 24 and out_scope <= 6, (own, in_scope, out_scope)
    d = checker.check(cases[0]["prompt"], [Candidate(recs[0], 0.0)])[0]
    assert d.checker == "sentinel" and "sentinel" in d.reason
    assert (checker.margin(cases[0]["prompt"], recs[0].statement) > 0) == d.in_scope
    assert checker.scores(cases[0]["prompt"], [Candidate(recs[0], 0.0)])[0][1] == pytest.approx(
        checker.margin(cases[0]["prompt"], recs[0].statement))


def test_untrained_identity_maps_do_not_already_do_it(embedder):
    cases, _ = load_cases(TRAIN, 40)
    dim = embedder.dim
    blank = SentinelModel(np.zeros((dim, dim), np.float32), np.zeros((dim, dim), np.float32),
                          np.ones(dim, np.float32), {})
    vecs = dict(zip([c["free"] for c in cases], embedder.embed([c["free"] for c in cases])))
    edits = blank.edits(embedder.embed([c["edit"] for c in cases]))
    q = blank.queries(np.stack([vecs[c["free"]] for c in cases]))
    # with a fixed sentinel every locality prompt has some edit closer than it: the threshold has to be learned
    assert ((q @ edits.T).max(-1) > q @ blank._unit(blank.sentinel)).mean() > 0.5


def test_evaluation_splits_and_a_missing_sentinel_are_refused(tmp_path, memory, embedder):
    with pytest.raises(ConfigError, match="is an evaluation split"):
        train_sentinel(DATA_DIR / "counterfact" / "counterfact-edit.json", embedder)
    with pytest.raises(ConfigError, match="not found"):
        train_sentinel(tmp_path / "nothing.json", embedder)
    with pytest.raises(ConfigError, match="run `agentedit train-recipe`"):
        make_checker("sentinel", embedder=embedder, model_dir=memory.dir / "scope-model")
    assert not (memory.dir / "recipe").exists()


def test_train_recipe_command_saves_the_sentinel_with_the_store(tmp_path, embedder):
    from typer.testing import CliRunner

    from agentedit import cli

    small = tmp_path / "cf-train-slice.json"
    small.write_text(json.dumps(json.loads(TRAIN.read_text("utf-8"))[:40]))
    base = ["--store-dir", str(tmp_path / "stores"), "--store", "s"]
    res = CliRunner().invoke(cli.app, [*base, "train-recipe", "--data", str(small), "--n-cases", "40", "--epochs", "2",
                                       "--json"])
    assert res.exit_code == 0, res.output
    meta = json.loads(res.stdout[res.stdout.index("{"):])
    assert meta["folder"] == str(tmp_path / "stores" / "s" / "recipe") and meta["steps"] == 2 * 1
    assert SentinelModel.load(meta["folder"]).meta["n_train_cases"] == 30  # ten held back
    bad = CliRunner().invoke(cli.app, [*base, "train-recipe", "--data", str(DATA_DIR / "knowedit" / "ZsRE" /
                                                                               "ZsRE-test-all.json")])
    assert bad.exit_code != 0 and "evaluation split" in str(bad.exception or bad.output)
