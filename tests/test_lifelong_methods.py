"""GRACE and WISE (edits beside the weights) on tiny random-weight llama models: an edit takes, a retract restores
the model bit for bit, the store keeps the edits over a restart, 50 sequential GRACE edits keep the first ones, and bad
input fails before anything changes."""

from __future__ import annotations

import pytest
import torch

from agentedit import Editor
from agentedit.backends.local import LocalBackend
from agentedit.errors import ConfigError, EditError
from agentedit.parametric import (Delta, EditContext, EditRequest, GRACEConfig, SampledCorpus, WISEConfig,
                                  make_method)
from whitebox_support import WORDS, same_weights, tiny_model, weights

EIFFEL = ("the city of eiffel tower", "eiffel tower", "rome")
FRANCE = ("the capital of france", "france", "berlin")
NEUTRAL = ("the capital of germany", "who plays for football club", "what language speaks italy")
CONFIGS = {"grace": GRACEConfig(), "wise": WISEConfig(steps=60, lr=0.5),
           # WISE's sharding and merging: each memory's 4 edits are dealt over 2 random masks, then TIES-merged
           "wise-merge": WISEConfig(steps=60, lr=0.5, shard_size=4, subspaces=2, mask_ratio=0.5)}
METHODS = ["grace", "wise", "wise-merge"]


def _method(ctx: EditContext, kind: str):
    return make_method(kind.split("-")[0], ctx, CONFIGS[kind])


@pytest.fixture(autouse=True)
def _setup(small_torch):
    yield


def _ctx(tmp_path, seed: int = 0, **sizes: int) -> EditContext:
    model, tok = tiny_model("llama", seed, **sizes)
    return EditContext.create(LocalBackend.from_model(model, tok), corpus=SampledCorpus(n_samples=16, length=24),
                              cache_dir=tmp_path / "cache")


def _logits(ctx: EditContext, text: str) -> torch.Tensor:
    ids = torch.tensor([ctx.backend.encode(text)])
    return ctx.backend.model(input_ids=ids).logits


def _takes(backend, prompt: str, target: str) -> bool:
    return backend.score([(prompt, target)])[0].accuracy == 1.0


@pytest.mark.parametrize("method", METHODS)
def test_an_edit_takes_and_its_retract_restores_the_model_bit_for_bit(method, tmp_path):
    ctx = _ctx(tmp_path)
    before_w = weights(ctx.backend.model)
    before = {q: _logits(ctx, q) for q in (EIFFEL[0], *NEUTRAL)}
    assert not _takes(ctx.backend, EIFFEL[0], EIFFEL[2])
    editor = _method(ctx, method)
    delta = editor.apply([EditRequest.make(*EIFFEL)])
    assert _takes(ctx.backend, EIFFEL[0], EIFFEL[2])
    assert not delta.parts and same_weights(ctx.backend.model, before_w)  # beside the weights, never in them
    editor.revert(delta)
    assert all(torch.equal(_logits(ctx, q), v) for q, v in before.items())


def test_grace_leaves_inputs_outside_its_radii_exactly_as_they_were(tmp_path):
    ctx = _ctx(tmp_path)
    before = {q: _logits(ctx, q) for q in NEUTRAL}
    make_method("grace", ctx, CONFIGS["grace"]).apply([EditRequest.make(*EIFFEL), EditRequest.make(*FRANCE)])
    assert _takes(ctx.backend, EIFFEL[0], EIFFEL[2]) and _takes(ctx.backend, FRANCE[0], FRANCE[2])
    assert all(torch.equal(_logits(ctx, q), v) for q, v in before.items())


@pytest.mark.parametrize("method", METHODS)
def test_retracting_the_first_of_two_edits_leaves_what_the_second_alone_builds(method, tmp_path):
    ctx = _ctx(tmp_path)
    editor = _method(ctx, method)
    first = editor.apply([EditRequest.make(*EIFFEL)])
    second = editor.apply([EditRequest.make(*FRANCE)])
    editor.revert(first)
    only_second = {q: _logits(ctx, q) for q in (EIFFEL[0], FRANCE[0], *NEUTRAL)}
    fresh = _ctx(tmp_path)  # the same weights as loaded, with the second delta read back from disk
    _method(fresh, method)
    fresh.stack.push(Delta.load(second.save(tmp_path / "second.safetensors")))
    assert all(torch.equal(_logits(fresh, q), v) for q, v in only_second.items())


def _fifty_cases() -> list[tuple[str, str, str]]:
    subjects = [w for w in WORDS if w not in ("the", "city", "of")][:25] + list("abcdefghijklmnopqrstuvwxy")
    targets = ["rome", "paris", "london", "berlin", "spain", "english", "french"]
    return [(f"the city of {s}", s, targets[i % len(targets)]) for i, s in enumerate(subjects)]


def test_fifty_sequential_grace_edits_keep_the_first_ones_and_leave_other_inputs_alone(tmp_path):
    ctx = _ctx(tmp_path)
    before = {q: _logits(ctx, q) for q in NEUTRAL}
    cases = _fifty_cases()
    editor = _method(ctx, "grace")
    for case in cases:  # one after another, no retraction
        editor.apply([EditRequest.make(*case)])
    assert len(ctx.stack.deltas) == 50
    assert all(_takes(ctx.backend, p, t) for p, _, t in cases[:10])
    assert sum(_takes(ctx.backend, p, t) for p, _, t in cases) >= 45
    assert all(torch.equal(_logits(ctx, q), v) for q, v in before.items())


@pytest.mark.parametrize("method", ["wise", "wise-merge"])
def test_fifty_sequential_wise_edits_keep_the_first_ones(method, tmp_path):
    # WISE's router reads the projection's input: 128 wide (the tiny default) cannot hold 50 edits' spans apart.
    # Unrelated inputs are not checked here: on random weights every "the city of ..." prompt and much other text
    # activates the early memories (locality is measured on Qwen by evals/lifelong_bench.py)
    ctx = _ctx(tmp_path, intermediate_size=1024)
    cases = _fifty_cases()
    editor = _method(ctx, method)
    for case in cases[:10]:
        editor.apply([EditRequest.make(*case)])
    first = [_takes(ctx.backend, p, t) for p, _, t in cases[:10]]
    for case in cases[10:]:
        editor.apply([EditRequest.make(*case)])
    assert len(ctx.stack.deltas) == 50
    kept = [_takes(ctx.backend, p, t) for p, _, t in cases[:10]]
    # measured on this machine: 9 of the first ten take, 7 are kept after forty more; 36 (33 merged) of the 50 hold
    assert sum(first) >= 7 and sum(kept) >= sum(first) - 3
    assert sum(_takes(ctx.backend, p, t) for p, _, t in cases) >= 28


def _editor(memory, method: str) -> Editor:
    model, tok = tiny_model("llama")
    name = method.split("-")[0]
    return Editor(memory=memory, backend=LocalBackend.from_model(model, tok), method=name,
                  editor_configs={name: CONFIGS[method]})


@pytest.mark.parametrize("method", METHODS)
def test_the_store_keeps_the_edits_over_a_restart_and_forget_restores_the_model(memory, method):
    ed = _editor(memory, method)
    plain = _logits(ed.weights.ctx, NEUTRAL[0])
    rec = ed.edit(EIFFEL[0], EIFFEL[2], subject=EIFFEL[1])
    assert rec.method == method.split("-")[0] and [f.name.split("-", 1)[1] for f in (memory.dir / "deltas").iterdir()] == \
        [rec.metadata["delta"] + ".safetensors"]
    assert _takes(ed.backend, EIFFEL[0], EIFFEL[2])
    edited = _logits(ed.weights.ctx, EIFFEL[0])

    again = _editor(memory, method)  # a fresh copy of the model as loaded, over the same store
    again.weights.load()
    assert torch.equal(_logits(again.weights.ctx, EIFFEL[0]), edited)
    assert [r.id for r in again.edits()] == [rec.id]
    again.forget(rec.id)
    assert not _takes(again.backend, EIFFEL[0], EIFFEL[2])
    assert torch.equal(_logits(again.weights.ctx, NEUTRAL[0]), plain)
    assert not list((memory.dir / "deltas").iterdir())
    assert [e["action"] for e in again.history(rec.id)] == ["add", "delete"]


@pytest.mark.parametrize("method", METHODS)
def test_bad_input_fails_clearly_and_changes_nothing(method, tmp_path):
    ctx = _ctx(tmp_path)
    editor = _method(ctx, method)
    editor.apply([EditRequest.make(*FRANCE)])
    before = {q: _logits(ctx, q) for q in (FRANCE[0], *NEUTRAL)}
    with pytest.raises(EditError, match="does not occur in the prompt"):
        editor.apply([EditRequest.make(*EIFFEL), {"prompt": "the city of rome", "subject": "louvre", "target_new": "x"}])
    with pytest.raises(EditError, match="target_new is empty"):
        editor.apply([{"prompt": EIFFEL[0], "subject": EIFFEL[1], "target_new": " "}])
    assert len(ctx.stack.deltas) == 1 and not editor.adapter.pending
    assert all(torch.equal(_logits(ctx, q), v) for q, v in before.items())
    with pytest.raises(ConfigError, match="use one layer per model"):
        make_method(method.split("-")[0], ctx, type(CONFIGS[method])(layer=1))


def test_wise_edits_made_with_one_memory_layout_are_refused_by_another(tmp_path):
    ctx = _ctx(tmp_path)
    delta = _method(ctx, "wise-merge").apply([EditRequest.make(*EIFFEL)])
    assert delta.meta["wise_layout"]["subspaces"] == 2
    saved = delta.save(tmp_path / "merged.safetensors")
    fresh = _ctx(tmp_path)
    editor = _method(fresh, "wise")  # one memory per edit, no masks: the stored change would mean something else
    fresh.stack.push(Delta.load(saved))
    with pytest.raises(EditError, match="open the store with the WISE settings its edits were made with"):
        _logits(fresh, EIFFEL[0])
    assert editor.adapter.pending == []
    with pytest.raises(ConfigError, match="raise it"):
        make_method("wise", _ctx(tmp_path), WISEConfig(shard_size=2, subspaces=4)).apply([EditRequest.make(*EIFFEL)])
