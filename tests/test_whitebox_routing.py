"""The Editor's parametric route over a real store (SQLite + Chroma) and a tiny random-weight llama."""

from __future__ import annotations

import pytest

from agentedit import ConfigError, EditError, Editor
from agentedit.backends.local import LocalBackend
from whitebox_support import same_weights, tiny_configs, tiny_model, weights

EIFFEL = {"prompt": "the city of eiffel tower", "subject": "eiffel tower", "target_new": "rome"}
FRANCE = {"prompt": "the capital of france", "subject": "france", "target_new": "berlin"}


@pytest.fixture(autouse=True)
def _setup(small_torch):
    yield


def _editor(memory, **kw) -> Editor:
    model, tok = tiny_model("llama")
    return Editor(memory=memory, backend=LocalBackend.from_model(model, tok), editor_configs=tiny_configs(), **kw)


def _top1(ed: Editor, case: dict) -> bool:
    return ed.backend.score([(case["prompt"], case["target_new"])])[0].accuracy == 1.0


def test_local_model_edits_weights_by_default_and_forget_restores_them(memory):
    ed = _editor(memory)
    before = weights(ed.backend.model)
    assert ed.method == "rome"
    rec = ed.edit(EIFFEL["prompt"], EIFFEL["target_new"], subject=EIFFEL["subject"])
    assert rec.method == "rome" and rec.metadata["delta"].startswith("d_")
    assert [f.name.split("-", 1)[1] for f in (memory.dir / "deltas").iterdir()] == [rec.metadata["delta"] + ".safetensors"]
    assert _top1(ed, EIFFEL)
    ans = ed.ask(EIFFEL["prompt"], style="text", max_tokens=2)
    assert ans.mode == "parametric" and ans.applied == [rec.id]
    assert "Here are" not in str(ans.messages)  # nothing injected: the edit is in the weights
    assert [r.id for r in ed.edits()] == [rec.id]
    ed.forget(rec.id)
    assert same_weights(ed.backend.model, before)
    assert not list((memory.dir / "deltas").iterdir())
    assert [e["action"] for e in ed.history(rec.id)] == ["add", "delete"]


def test_weight_edits_survive_a_restart_and_forgetting_one_of_a_batch_keeps_the_other(memory, tmp_path):
    ed = _editor(memory, method="memit")
    recs = ed.edit_many([EIFFEL, FRANCE])
    assert {r.metadata["delta"] for r in recs} == {recs[0].metadata["delta"]} and recs[0].method == "memit"
    edited = weights(ed.backend.model)

    again = _editor(memory)  # a fresh copy of the model as loaded, over the same store
    again.ask(FRANCE["prompt"], style="text", max_tokens=1)
    assert same_weights(again.backend.model, edited)
    again.forget(recs[0].id)
    assert _top1(again, FRANCE) and not _top1(again, EIFFEL)
    kept = again.memory.get(recs[1].id)
    assert kept.status == "active" and kept.metadata["delta"] != recs[0].metadata["delta"]
    assert [e["action"] for e in again.history(recs[1].id)] == ["add", "update"]


def test_in_context_route_on_a_local_model_leaves_weights_alone(memory):
    ed = _editor(memory, method="in-context")
    before = weights(ed.backend.model)
    rec = ed.edit(EIFFEL["prompt"], EIFFEL["target_new"], subject=EIFFEL["subject"])
    assert rec.method == "in-context" and "delta" not in rec.metadata
    assert same_weights(ed.backend.model, before)


def test_api_models_stay_in_context_and_refuse_weight_methods(memory, make_backend):
    assert Editor(memory=memory, backend=make_backend()).method == "in-context"
    with pytest.raises(ConfigError, match="does not expose"):
        Editor(memory=memory, backend=make_backend(), method="rome").edit("The sky is", "green", subject="sky")
    assert memory.list() == []


def test_a_bad_edit_in_a_batch_writes_nothing(memory):
    ed = _editor(memory, method="rome")
    before = weights(ed.backend.model)
    with pytest.raises(EditError, match="does not occur in the prompt .* of edit #1"):
        ed.edit_many([EIFFEL, {"prompt": "the capital of france", "subject": "spain", "target_new": "berlin"}])
    assert memory.list() == [] and same_weights(ed.backend.model, before)
    assert not (memory.dir / "deltas").exists() or not list((memory.dir / "deltas").iterdir())


def test_eval_harness_methods_make_the_weights_follow_the_memory(memory):
    from agentedit.evaluation import METHODS
    from agentedit.evaluation.parametric import WeightSyncMethod

    assert {"rome", "memit", "ft", "alphaedit"} <= set(METHODS)
    model, tok = tiny_model("llama")
    backend = LocalBackend.from_model(model, tok)
    before = weights(model)
    ev = WeightSyncMethod("hf:unused", memory, "memit", configs=tiny_configs(), backend=backend, max_tokens=2)
    a, b = memory.add_many([EIFFEL, FRANCE])
    ans = ev.ask(EIFFEL["prompt"], style="complete")
    assert ans.mode == "parametric" and ans.applied == [a.id]
    assert ev.top1(FRANCE["prompt"], FRANCE["target_new"])[1] == ev.top1(FRANCE["prompt"], FRANCE["target_new"])[0]
    memory.delete(a.id)  # one edit of the batch leaves: the other is edited in again, alone
    ev.sync()
    assert _top1(ev, FRANCE) and not _top1(ev, EIFFEL)
    memory.delete(b.id)
    ev.sync()
    assert same_weights(model, before)


def test_agentedit_eval_runs_a_parametric_method_on_an_hf_model(tmp_path):
    from agentedit.evaluation import RunConfig, Runner, read_rows
    from conftest import DATA_DIR

    model, tok = tiny_model("llama")
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    cfg = RunConfig(datasets=["counterfact-edit"], methods=["rome"], model=f"hf:{tmp_path / 'tiny'}", limit=2,
                    protocol="single", max_tokens=2, data_dir=str(DATA_DIR))
    runner = Runner(cfg, tmp_path / "run")
    report = runner.run()
    runner.close()
    rome = report["datasets"]["counterfact-edit"]["methods"]["rome"]
    assert report["backend"] == "transformers" and rome["n_cases"] == 2 and "locality" in rome
    rows = read_rows(tmp_path / "run")
    assert {r["route"] for r in rows if r["method"] == "rome"} == {"parametric"}
    assert (tmp_path / "run" / "results.json").exists() and (tmp_path / "run" / "summary.md").exists()


def test_stats_corpus_file_feeds_the_statistics(memory, tmp_path):
    """--stats-corpus: the key statistics come from the user's text (its id keys the cache), and a missing file
    is refused before anything is written."""
    with pytest.raises(ConfigError, match="stats corpus .* is not a file"):
        _editor(memory, stats_corpus=tmp_path / "missing.txt")
    text = tmp_path / "prose.txt"
    text.write_text(" ".join(f"the city of paris is in france and the sky is blue {i}." for i in range(60)), "utf-8")
    ed = _editor(memory, stats_corpus=text)
    assert ed.weights.ctx.moments.corpus.id.startswith("text-")
    rec = ed.edit(EIFFEL["prompt"], EIFFEL["target_new"], subject=EIFFEL["subject"])
    assert rec.method == "rome" and _top1(ed, EIFFEL)
