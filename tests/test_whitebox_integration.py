"""A real model: SmolLM2-135M-Instruct (llama architecture) from its GGUF, dequantised by transformers.

ROME on a CounterFact case must make the model say the new target, leave an unrelated (locality)
prompt's answer unchanged, and revert to the loaded weights bit for bit.
"""

from __future__ import annotations

import json

import pytest

from agentedit.backends import resolve_backend
from agentedit.parametric import EditContext, EditRequest, SampledCorpus, make_method
from conftest import DATA_DIR
from whitebox_support import same_weights, weights


@pytest.fixture(scope="module")
def smollm(tmp_path_factory):
    backend = resolve_backend("hf:smollm2-135m-instruct")
    ctx = EditContext.create(backend, corpus=SampledCorpus(n_samples=16, length=64),
                             cache_dir=tmp_path_factory.mktemp("stats"))
    yield ctx
    backend.close()


def _case(case_id: int) -> dict:
    cases = json.loads((DATA_DIR / "counterfact" / "counterfact-edit.json").read_text("utf-8"))
    return next(c for c in cases if c["case_id"] == case_id)


def test_rome_on_a_counterfact_case_changes_the_answer_and_nothing_nearby(smollm):
    case = _case(0)  # Danielle Darrieux's mother tongue: French -> English
    backend = smollm.backend
    loaded = weights(backend.model)
    before = backend.complete(case["prompt"], max_tokens=4).text
    locality = backend.complete(case["locality_prompt"], max_tokens=4).text
    assert case["target_new"] not in before

    delta = make_method("rome", smollm).apply([EditRequest.make(case["prompt"], case["subject"], case["target_new"])])
    after = backend.complete(case["prompt"], max_tokens=4).text
    assert after.strip().startswith(case["target_new"]), after
    assert backend.complete(case["locality_prompt"], max_tokens=4).text == locality
    assert backend.score([(case["prompt"], case["target_new"])])[0].accuracy == 1.0

    make_method("rome", smollm).revert(delta)
    assert same_weights(backend.model, loaded)
    assert backend.complete(case["prompt"], max_tokens=4).text == before


def test_the_chat_template_is_used(smollm):
    reply = smollm.backend.chat([{"role": "user", "content": "What is the capital of France?"}], max_tokens=8)
    assert "Paris" in reply.text
