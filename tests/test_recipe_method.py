"""RECIPE (retrieved continuous prompts, the LLM frozen) on a tiny random-weight llama model: after a short training
of the prompt encoder an edit takes, a retract gives the unedited outputs bit for bit, the store keeps the edits over
a restart, 50 sequential edits keep the first ones (each query retrieves its own edit's prompt), and bad input or a
missing encoder fails clearly without changing the model."""

from __future__ import annotations

import hashlib
import json
import string

import numpy as np
import pytest
import torch

from agentedit import Editor
from agentedit.backends.local import LocalBackend
from agentedit.errors import ConfigError, EditError
from agentedit.parametric import EditContext, EditRequest, RECIPEConfig, SampledCorpus, make_method
from agentedit.parametric.recipe import encode
from agentedit.parametric.recipe_encoder import encoder_paths, save_encoder
from agentedit.parametric.recipe_training import prefixed_hidden, train_encoder
from agentedit.scope.sentinel import SentinelModel
from conftest import COUNTERFACT_TRAIN
from whitebox_support import WORDS, config

NOUNS = ("apple banana cherry grape lemon mango melon olive peach pear plum tiger lion zebra horse camel eagle falcon "
         "otter panda wolf bear shark whale salmon violin guitar piano drum flute cotton silk wool copper silver gold "
         "iron marble granite diamond ruby emerald jade tulip rose lily daisy orchid cactus maple").split()
TARGETS = ("rome", "paris", "london", "berlin", "spain", "english", "french")
CASES = [(f"the city of {s}", s, TARGETS[i % len(TARGETS)]) for i, s in enumerate(NOUNS)]
NEUTRAL = ("the capital of germany", "who plays for football club", "what language speaks italy")
MARGIN = 0.65  # the hand-made sentinel below scores 0 for every text here: retrieve when cos(query, edit) > 0.65


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for w in [*WORDS, *NOUNS, "where", *string.ascii_lowercase, *".,:;!?'"]:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def _backend() -> LocalBackend:
    """A fresh copy of the same tiny model (same seed: bit-identical weights)."""
    from transformers import AutoModelForCausalLM

    tok = _tokenizer()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config("llama", len(tok))).eval()
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(5.0)
    for p in model.parameters():
        p.requires_grad_(False)
    return LocalBackend.from_model(model, tok)


def _training_cases() -> list[dict[str, str]]:
    return [{"prompt": p, "target": t, "rephrase": f"where is {s} located in", "free": NEUTRAL[i % 3]}
            for i, (p, s, t) in enumerate(CASES)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, embedder):
    """``<folder>`` holding a prompt encoder trained for the tiny model on the 50 cases, and a sentinel that scores 0
    for every text of these tests (its vector is orthogonal to all of them), so MARGIN is the retrieval threshold."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("recipe")
    texts = [*(p for p, _, _ in CASES), *(f"{p} {t}." for p, _, t in CASES), *NEUTRAL,
             *(f"where is {s} located in" for _, s, _ in CASES)]
    span = np.linalg.qr(embedder.embed(texts).T.astype(np.float64))[0]
    s = np.random.default_rng(0).standard_normal(embedder.dim)
    s = (s - span @ (span.T @ s)).astype(np.float32)
    dim = embedder.dim
    SentinelModel(np.zeros((dim, dim), np.float32), np.zeros((dim, dim), np.float32), s, {}).save(folder)
    ctx = _ctx(folder, embedder)
    encoder, meta = train_encoder(ctx, _training_cases(), embedder, k=4, epochs=60, batch=10, lr=1e-2, heldout=0)
    assert meta["steps"] == 300 and meta["hidden_size"] == 64
    save_encoder(encoder, folder, ctx.backend, meta)
    return folder


def _ctx(folder, embedder) -> EditContext:
    return EditContext.create(_backend(), corpus=SampledCorpus(n_samples=4, length=8), cache_dir=folder / "cache",
                              store_dir=folder.parent, embedder=embedder)


def _recipe(ctx: EditContext, folder):
    return make_method("recipe", ctx, RECIPEConfig(folder=str(folder), margin=MARGIN))


def _logits(ctx: EditContext, text: str) -> torch.Tensor:
    return ctx.backend.model(input_ids=torch.tensor([ctx.backend.encode(text)])).logits


def _takes(backend, prompt: str, target: str) -> bool:
    return backend.score([(prompt, target)])[0].accuracy == 1.0


def _state_hash(model) -> str:
    h = hashlib.sha256()
    for name, v in model.state_dict().items():
        h.update(name.encode())
        h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def test_an_edit_takes_and_its_retract_restores_the_outputs_bit_for_bit(trained, embedder):
    ctx = _ctx(trained, embedder)
    p, s, t = CASES[0]
    before = {q: _logits(ctx, q) for q in (p, *NEUTRAL)}
    weights = _state_hash(ctx.backend.model)
    assert not _takes(ctx.backend, p, t)
    editor = _recipe(ctx, trained)
    delta = editor.apply([EditRequest.make(p, s, t)])
    assert not delta.parts and delta.extras["prompt"].shape == (4, 64) and delta.extras["key"].shape == (1, 384)
    assert _takes(ctx.backend, p, t) and _takes(ctx.backend, f"where is {s} located in", t)  # prompt and paraphrase
    assert ctx.backend.complete(p, max_tokens=1).text.strip() == t  # generation goes through the same prefix
    assert all(torch.equal(_logits(ctx, q), before[q]) for q in NEUTRAL)  # the sentinel keeps unrelated rows untouched
    assert _state_hash(ctx.backend.model) == weights  # the LLM stays frozen
    editor.revert(delta)
    assert all(torch.equal(_logits(ctx, q), v) for q, v in before.items())


def test_fifty_sequential_edits_keep_the_first_ones_each_query_retrieving_its_own_prompt(trained, embedder):
    ctx = _ctx(trained, embedder)
    before = {q: _logits(ctx, q) for q in NEUTRAL}
    editor = _recipe(ctx, trained)
    deltas = [editor.apply([EditRequest.make(*case)]) for case in CASES]  # one after another, no retraction
    assert len(ctx.stack.deltas) == 50
    state = editor.adapter.state()
    for i, (p, _, t) in enumerate(CASES[:10]):
        ids = torch.tensor([ctx.backend.encode(p)])
        assert editor.choose(state, ids, torch.ones_like(ids)) == [i]
        with editor.adapter.standing_aside():  # the hook's output is the model after this edit's own prompt
            own = ctx.logits(prefixed_hidden(ctx, deltas[i].extras["prompt"][None], [ids[0].tolist()]))
        assert torch.allclose(_logits(ctx, p).float(), own, atol=1e-5)
    assert all(_takes(ctx.backend, p, t) for p, _, t in CASES[:10])
    assert sum(_takes(ctx.backend, p, t) for p, _, t in CASES) >= 45
    assert all(torch.equal(_logits(ctx, q), v) for q, v in before.items())


def test_a_batch_mixing_edited_and_unrelated_rows_prefixes_only_the_edited_ones(trained, embedder):
    ctx = _ctx(trained, embedder)
    editor = _recipe(ctx, trained)
    editor.apply([EditRequest.make(*CASES[1])])
    out = ctx.backend.complete_many([CASES[1][0], NEUTRAL[1]], max_tokens=3)
    alone = ctx.backend.complete(NEUTRAL[1], max_tokens=3)
    assert out[0].text.split()[0] == CASES[1][2] and out[1].text == alone.text


def _editor(memory, folder) -> Editor:
    return Editor(memory=memory, backend=_backend(), method="recipe",
                  editor_configs={"recipe": RECIPEConfig(folder=str(folder), margin=MARGIN)})


def test_the_store_keeps_the_edits_over_a_restart_and_forget_restores_the_model(memory, trained):
    ed = _editor(memory, trained)
    p, s, t = CASES[2]
    plain = _logits(ed.weights.ctx, p)
    rec = ed.edit(p, t, subject=s)
    assert rec.method == "recipe" and _takes(ed.backend, p, t)
    edited = _logits(ed.weights.ctx, p)

    again = _editor(memory, trained)  # a fresh copy of the model as loaded, over the same store
    again.weights.load()
    assert torch.equal(_logits(again.weights.ctx, p), edited)
    assert [r.id for r in again.edits()] == [rec.id]
    again.forget(rec.id)
    assert torch.equal(_logits(again.weights.ctx, p), plain)
    assert not list((memory.dir / "deltas").iterdir())
    assert [e["action"] for e in again.history(rec.id)] == ["add", "delete"]


def test_bad_input_and_a_missing_encoder_fail_clearly_and_change_nothing(trained, embedder, tmp_path):
    ctx = _ctx(trained, embedder)
    editor = _recipe(ctx, trained)
    editor.apply([EditRequest.make(*CASES[3])])
    before = {q: _logits(ctx, q) for q in (CASES[3][0], *NEUTRAL)}
    weights = _state_hash(ctx.backend.model)
    with pytest.raises(EditError, match="target_new is empty"):
        editor.apply([EditRequest.make(*CASES[4]), {"prompt": CASES[5][0], "subject": CASES[5][1], "target_new": " "}])
    assert len(ctx.stack.deltas) == 1 and not editor.adapter.pending

    bare = tmp_path / "bare"  # a sentinel but no encoder for this model
    bare.mkdir()
    for name in ("sentinel.safetensors", "sentinel.json"):
        (bare / name).write_bytes((trained / name).read_bytes())
    lone = make_method("recipe", _ctx(bare, embedder), RECIPEConfig(folder=str(bare)))
    with pytest.raises(ConfigError, match=r"no RECIPE prompt encoder .*agentedit --model hf:.* train-recipe"):
        lone.apply([EditRequest.make(*CASES[4])])
    with pytest.raises(ConfigError, match="train-recipe"):  # nothing trained at all
        make_method("recipe", _ctx(tmp_path / "empty", embedder), RECIPEConfig(folder=str(tmp_path / "empty")))
    info = encoder_paths(trained, ctx.backend)[1]
    meta = json.loads(info.read_text())
    other = tmp_path / "other"
    other.mkdir()
    for f in trained.iterdir():
        if f.is_file():
            (other / f.name).write_bytes(f.read_bytes())
    (other / info.name).write_text(json.dumps({**meta, "settings": {**meta["settings"], "hidden_size": 896}}))
    with pytest.raises(ConfigError, match="hidden size 896"):
        make_method("recipe", _ctx(other, embedder), RECIPEConfig(folder=str(other))).apply([EditRequest.make(*CASES[4])])
    assert _state_hash(ctx.backend.model) == weights
    assert all(torch.equal(_logits(ctx, q), v) for q, v in before.items())


def test_train_recipe_trains_the_sentinel_and_the_encoder_and_saves_them_with_the_store(memory, tmp_path):
    small = tmp_path / "cf-train-slice.json"
    small.write_text(json.dumps(json.loads(COUNTERFACT_TRAIN.read_text("utf-8"))[:40]))
    ed = Editor(memory=memory, backend=_backend(), method="recipe")
    out = ed.train_recipe(small, n_cases=40, epochs=2, encoder_cases=40, encoder_epochs=1, prompt_tokens=3)
    enc = out["encoder"]
    assert enc["n_train_cases"] + enc["n_heldout_cases"] == 40 and enc["k"] == 3 and enc["steps"] == 5
    assert 0.0 <= enc["heldout_locality"] <= 1.0 and enc["data_sha256"]
    folder = memory.dir / "recipe"
    assert (folder / "sentinel.safetensors").is_file() and enc["file"] == str(encoder_paths(folder, ed.backend)[0])
    rec = ed.edit("the city of apple", "rome", subject="apple")  # the store's own encoder and sentinel serve edits
    assert rec.method == "recipe" and ed.weights.ctx.stack.deltas[0].extras["prompt"].shape == (3, 64)
    with pytest.raises(ConfigError, match="evaluation split"):
        ed.train_recipe(COUNTERFACT_TRAIN.parent / "counterfact-edit.json")


def test_encode_is_what_an_edit_stores(trained, embedder):
    ctx = _ctx(trained, embedder)
    editor = _recipe(ctx, trained)
    p, s, t = CASES[6]
    delta = editor.apply([EditRequest.make(p, s, t)])
    vec = torch.tensor(embedder.embed([f"{p} {t}."]))
    with torch.no_grad():
        again = encode(ctx, editor._encoder(), vec, [ctx.backend.encode(t)])[0]
    assert torch.allclose(delta.extras["prompt"], again, atol=1e-6)


def test_encoder_files_are_named_by_the_whole_model_name(tmp_path):
    class Named:
        name = "hf:Qwen/Qwen2.5-7B-Instruct"

    weights, info = encoder_paths(tmp_path, Named())
    assert (weights.name, info.name) == ("encoder-Qwen2.5-7B-Instruct.safetensors", "encoder-Qwen2.5-7B-Instruct.json")
