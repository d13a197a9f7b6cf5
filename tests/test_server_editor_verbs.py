"""``/v1/edits`` goes through the Editor's verbs: a plain statement gets its anatomy as through ``Editor.edit``, and
``DELETE`` of an edit that lives in the weights restores them bit for bit (a tiny random-weight llama, CPU)."""

from __future__ import annotations

import httpx
import pytest

from agentedit import Editor
from agentedit.backends.local import LocalBackend
from agentedit.memory import EditMemory
from agentedit.server import ServerConfig, create_app
from server_support import serving
from whitebox_support import same_weights, tiny_configs, tiny_model, weights

STATEMENT = "Alice's manager is Bob."


@pytest.fixture(autouse=True)
def _one_thread(small_torch):
    yield


def test_a_statement_over_http_gets_the_anatomy_editor_edit_gives(tmp_path, embedder) -> None:
    with Editor("openai/stub", api_base="http://127.0.0.1:9/v1", store="direct", store_dir=str(tmp_path)) as ed:
        direct = ed.edit(statement=STATEMENT)
    cfg = ServerConfig(model="openai/stub", api_base="http://127.0.0.1:9/v1", store="http", store_dir=str(tmp_path), auth=False)
    with serving(create_app(cfg)) as url:
        made = httpx.post(url + "/v1/edits", json={"statement": STATEMENT}, timeout=60).json()
        batch = httpx.post(url + "/v1/edits/batch", json={"edits": [{"statement": "Carol's manager is Dan."}]}, timeout=60)
        listed = httpx.get(url + "/v1/edits", params={"subject": "Carol"}, timeout=60).json()["data"]
    assert direct.subject == "Alice" and direct.target_new == "Bob"
    for key in ("subject", "prompt", "relation", "target_new", "statement"):
        assert made[key] == getattr(direct, key), key
    assert made["metadata"]["anatomy"] == direct.metadata["anatomy"]
    assert batch.status_code == 201 and [e["subject"] for e in listed] == ["Carol"]


def test_deleting_a_weight_edit_over_http_restores_the_weights(tmp_path, embedder) -> None:
    model, tok = tiny_model("llama")
    backend = LocalBackend.from_model(model, tok)
    original = weights(model)
    memory = EditMemory("weights", root=tmp_path, embedder=embedder)

    def factory(cfg: ServerConfig) -> Editor:
        return Editor(memory=memory, backend=backend, editor_configs=tiny_configs())

    cfg = ServerConfig(model="hf:tiny", store="weights", store_dir=str(tmp_path), auth=False)
    with serving(create_app(cfg, editor_factory=factory)) as url:
        made = httpx.post(url + "/v1/edits", json={"prompt": "the city of eiffel tower", "subject": "eiffel tower",
                                                   "target_new": "rome"}, timeout=300)
        assert made.status_code == 201, made.text
        assert made.json()["method"] == "rome" and not same_weights(model, original)  # the edit is in the weights
        patched = httpx.patch(url + f"/v1/edits/{made.json()['id']}", json={"target_new": "paris"}, timeout=60)
        assert patched.status_code == 400 and "forget it and edit again" in patched.text
        gone = httpx.delete(url + f"/v1/edits/{made.json()['id']}", timeout=300)
        assert gone.status_code == 200 and gone.json()["edit"]["status"] == "retracted"
    assert same_weights(model, original)  # bit for bit
    assert not list((memory.dir / "deltas").iterdir())
