"""Parametric methods on tiny random-weight llama and gpt2 models built from configs (CPU, seconds)."""

from __future__ import annotations

import pytest
import torch

from agentedit.backends.local import LocalBackend
from agentedit.parametric import (ArchitectureError, Delta, EditContext, EditRequest, MEMITConfig, SampledCorpus,
                               discover, make_method)
from agentedit.errors import EditError
from whitebox_support import same_weights, tiny_configs, tiny_model, weights

EIFFEL = ("the city of eiffel tower", "eiffel tower", "rome")
FRANCE = ("the capital of france", "france", "berlin")


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    yield
    torch.set_num_threads(before)


def _ctx(kind: str, tmp_path, seed: int = 0) -> EditContext:
    model, tok = tiny_model(kind, seed)
    return EditContext.create(LocalBackend.from_model(model, tok), corpus=SampledCorpus(n_samples=16, length=24),
                              cache_dir=tmp_path / "cache")


def _top1_is_target(ctx: EditContext, prompt: str, target: str) -> bool:
    return ctx.backend.score([(prompt, target)])[0].accuracy == 1.0


@pytest.mark.parametrize("kind", ["llama", "mistral", "qwen2", "gemma3", "gpt2", "gptj"])
def test_layout_is_found_from_config_and_module_tree(kind):
    model, _ = tiny_model(kind)
    layout = discover(model)
    assert layout.n_layers == 6 and layout.hidden_size == 64
    weight = model.get_parameter(layout.weight_name(2))
    assert layout.transposed == (kind == "gpt2")
    out_in = tuple(weight.shape[::-1]) if layout.transposed else tuple(weight.shape)
    assert out_in == (64, layout.inner_size)
    assert model.get_submodule(layout.lm_head_path) is model.get_output_embeddings()


def test_unsupported_architecture_names_the_missing_part():
    model, _ = tiny_model("llama")
    for block in model.model.layers:
        block.mlp = torch.nn.Identity()
    with pytest.raises(ArchitectureError, match="block 0 has no MLP output projection"):
        discover(model)


@pytest.mark.parametrize("kind,method", [("llama", "rome"), ("gpt2", "rome"), ("llama", "memit"), ("gpt2", "memit"),
                                         ("llama", "ft"), ("llama", "alphaedit")])
def test_edit_makes_target_top1_and_revert_is_bit_exact(kind, method, tmp_path):
    ctx = _ctx(kind, tmp_path)
    before = weights(ctx.backend.model)
    assert not _top1_is_target(ctx, *EIFFEL[::2]) or not _top1_is_target(ctx, *FRANCE[::2])
    editor = make_method(method, ctx, tiny_configs()[method])
    delta = editor.apply([EditRequest.make(*EIFFEL), EditRequest.make(*FRANCE)])
    assert _top1_is_target(ctx, EIFFEL[0], EIFFEL[2]) and _top1_is_target(ctx, FRANCE[0], FRANCE[2])
    assert not same_weights(ctx.backend.model, before)
    changed = [k for k, v in ctx.backend.model.state_dict().items() if not torch.equal(v, before[k])]
    assert sorted(changed) == sorted(delta.parts)  # only the MLP output projections moved
    editor.revert(delta)
    assert same_weights(ctx.backend.model, before)


def test_reverting_an_earlier_delta_keeps_later_ones_exactly(tmp_path):
    ctx = _ctx("llama", tmp_path)
    rome = make_method("rome", ctx, tiny_configs()["rome"])
    first = rome.apply([EditRequest.make(*EIFFEL)])
    second = rome.apply([EditRequest.make(*FRANCE)])
    rome.revert(first)
    only_second = weights(ctx.backend.model)
    fresh = _ctx("llama", tmp_path)
    fresh.stack.push(Delta.load(second.save(tmp_path / "second.safetensors")))
    assert same_weights(fresh.backend.model, only_second)


def test_delta_round_trips_through_safetensors(tmp_path):
    ctx = _ctx("gpt2", tmp_path)
    delta = make_method("memit", ctx, tiny_configs()["memit"]).apply([EditRequest.make(*EIFFEL)])
    edited = weights(ctx.backend.model)
    loaded = Delta.load(delta.save(tmp_path / "d.safetensors"))
    assert (loaded.id, loaded.method, loaded.transposed, sorted(loaded.parts)) == (delta.id, "memit", True, sorted(delta.parts))
    assert loaded.meta["requests"][0]["target"] == "rome"
    other = _ctx("gpt2", tmp_path)  # same seed: the weights as loaded
    other.stack.push(loaded)
    assert same_weights(other.backend.model, edited)


def test_statistics_are_cached_on_disk_by_model_layer_and_corpus(tmp_path):
    ctx = _ctx("llama", tmp_path)
    c = ctx.moments.get(1)
    files = list((tmp_path / "cache" / "stats").rglob("*.safetensors"))
    assert [f.name for f in files] == ["layer1.safetensors"] and ctx.fingerprint in str(files[0])
    assert "sampled-16x24-seed0" in str(files[0])
    assert torch.allclose(c, c.T, atol=1e-6) and torch.linalg.eigvalsh(c.double()).min() > -1e-6
    again = _ctx("llama", tmp_path).moments
    assert torch.equal(again.get(1), c)


@pytest.mark.parametrize("prompt,subject,target,message", [
    ("the city of eiffel tower", "louvre", "rome", "does not occur in the prompt"),
    ("the city of eiffel tower", "eiffel tower", "  ", "target_new is empty"),
    ("the city of eiffel tower", "", "rome", "subject is missing"),
])
def test_bad_requests_fail_before_the_weights_are_touched(tmp_path, prompt, subject, target, message):
    ctx = _ctx("llama", tmp_path)
    before = weights(ctx.backend.model)
    with pytest.raises(EditError, match=message):
        make_method("rome", ctx).apply([EditRequest.make(*EIFFEL), {"prompt": prompt, "subject": subject, "target_new": target}])
    assert same_weights(ctx.backend.model, before) and not ctx.stack.deltas


def test_a_layer_the_model_lacks_is_refused(tmp_path):
    ctx = _ctx("llama", tmp_path)
    before = weights(ctx.backend.model)
    with pytest.raises(ArchitectureError, match="layer 9 does not exist"):
        make_method("memit", ctx, MEMITConfig(layers=(2, 9))).apply([EditRequest.make(*EIFFEL)])
    assert same_weights(ctx.backend.model, before)


def test_statistics_are_taken_from_the_loaded_weights_even_after_edits(tmp_path):
    ctx = _ctx("llama", tmp_path / "a")
    make_method("ft", ctx, tiny_configs()["ft"]).apply([EditRequest.make(*EIFFEL)])  # changes layer 1
    edited = weights(ctx.backend.model)
    late = ctx.moments.get(3)  # computed now, with the edit in place
    assert same_weights(ctx.backend.model, edited)  # and the edit is still there afterwards
    assert torch.equal(late, _ctx("llama", tmp_path / "b").moments.get(3))


def test_text_corpus_keys_the_cache_by_its_content(tmp_path):
    from agentedit.parametric import TextCorpus

    a, b = TextCorpus(["the city of rome is in italy . " * 8]), TextCorpus(["the capital of france is paris . " * 8])
    assert a.id != b.id and a.id == TextCorpus(["the city of rome is in italy . " * 8]).id
    model, tok = tiny_model("llama")
    ctx = EditContext.create(LocalBackend.from_model(model, tok), corpus=a, cache_dir=tmp_path)
    assert ctx.moments.count(2) == len(ctx.backend.encode("the city of rome is in italy . " * 8))
