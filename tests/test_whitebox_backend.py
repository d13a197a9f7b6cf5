"""The transformers backend: spec resolution, generation and batched teacher-forced scoring (tiny llama)."""

from __future__ import annotations

import pytest
import torch

from agentedit.backends import resolve_backend
from agentedit.backends.local import LocalBackend
from agentedit.errors import ConfigError
from whitebox_support import tiny_model


@pytest.fixture(scope="module")
def backend() -> LocalBackend:
    model, tok = tiny_model("llama", seed=3)
    return LocalBackend.from_model(model, tok)


def test_hf_specs_resolve_to_the_local_backend_or_say_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="needs a model"):
        resolve_backend("hf:")
    with pytest.raises(ConfigError, match="no such GGUF file"):
        resolve_backend(f"hf:{tmp_path}/missing.gguf")
    with pytest.raises(ConfigError, match="no config.json"):
        resolve_backend(f"hf:{tmp_path}")
    with pytest.raises(ConfigError, match="api_base cannot be combined"):
        resolve_backend("hf:some-org/some-model", api_base="http://127.0.0.1:1")
    hub = resolve_backend("hf:agentedit-test/not-cached-anywhere")
    assert isinstance(hub, LocalBackend) and hub.capabilities.editable_weights and hub.capabilities.logprobs
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache"):
        hub.model


def test_a_saved_directory_loads_and_generates_like_the_model_in_memory(backend, tmp_path):
    backend.model.save_pretrained(tmp_path / "m")
    backend.tokenizer.save_pretrained(tmp_path / "m")
    loaded = resolve_backend(f"hf:{tmp_path / 'm'}")
    assert loaded.device == "cpu" and next(loaded.model.parameters()).dtype == torch.float32
    a = backend.complete("the city of eiffel tower", max_tokens=4)
    b = loaded.complete("the city of eiffel tower", max_tokens=4)
    assert a.text == b.text and a.usage["completion_tokens"] <= 4 and a.finish_reason in ("stop", "length")


def test_chat_without_a_template_and_batched_completion(backend):
    reply = backend.chat([{"role": "user", "content": "the capital of france"}], max_tokens=3)
    assert isinstance(reply.text, str) and reply.model == backend.name
    one = [backend.complete(p, max_tokens=3).text for p in ("the city of", "a river in france is")]
    assert [c.text for c in backend.complete_many(["the city of", "a river in france is"], max_tokens=3)] == one


def test_scores_match_the_model_logits_and_do_not_depend_on_batching(backend):
    pairs = [("the city of eiffel tower", "rome"), ("the capital of france is", "paris london"), ("who speaks", "french")]
    batched = backend.score(pairs, batch_size=8)
    single = [backend.score([p], batch_size=1)[0] for p in pairs]
    for a, b in zip(batched, single):
        assert a.target_ids == b.target_ids and a.top1 == b.top1
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    ids = backend.encode("the capital of france is paris london")
    with torch.no_grad():
        logp = torch.log_softmax(backend.model(torch.tensor([ids])).logits[0].float(), -1)
    s = batched[1]
    k = len(ids) - len(s.target_ids)
    assert s.target_ids == ids[k:]
    assert s.top1 == logp[k - 1:-1].argmax(-1).tolist()
    assert s.total_logprob == pytest.approx(float(sum(logp[k - 1 + i, t] for i, t in enumerate(s.target_ids))), abs=1e-4)
