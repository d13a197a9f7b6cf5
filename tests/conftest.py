"""Shared fixtures of the unit suite: the real embedder, throwaway stores, a recording backend."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

DATA_DIR = Path(os.environ.get("AGENTEDIT_DATA") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
COUNTERFACT_TRAIN = DATA_DIR / "counterfact" / "counterfact-train.json"


class RecordingBackend:
    """Stands in for a paid API model: records every request and returns a canned reply.

    ``reply`` is a string, a callable ``(payload) -> str``, or an exception instance to raise.
    ``calls`` holds ``(method, payload, params)`` for every call, in order.
    """

    def __init__(self, reply: str | Callable[[Any], str] | BaseException = "canned answer", *,
                 name: str = "fake/recorder") -> None:
        from agentedit.backends.base import Capabilities

        self.name = name
        self.capabilities = Capabilities()
        self.reply = reply
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []
        self.closed = False

    def _answer(self, method: str, payload: Any, params: dict[str, Any]):
        from agentedit.backends.base import Completion

        self.calls.append((method, payload, dict(params)))
        if isinstance(self.reply, BaseException):
            raise self.reply
        text = self.reply(payload) if callable(self.reply) else self.reply
        return Completion(text=text, finish_reason="stop", model=self.name,
                          usage={"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9})

    def chat(self, messages: Sequence[dict[str, Any]], **params: Any):
        return self._answer("chat", [dict(m) for m in messages], params)

    async def achat(self, messages: Sequence[dict[str, Any]], **params: Any):
        return self._answer("achat", [dict(m) for m in messages], params)

    def complete(self, prompt: str, **params: Any):
        return self._answer("complete", prompt, params)

    async def acomplete(self, prompt: str, **params: Any):
        return self._answer("acomplete", prompt, params)

    def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2 embedder, loaded once per session."""
    from agentedit.memory import shared_embedder

    emb = shared_embedder()
    emb.embed_one("warm up")
    return emb


@pytest.fixture()
def memory(tmp_path: Path, embedder):
    """A fresh on-disk store (real Chroma + SQLite) under tmp_path."""
    from agentedit.memory import EditMemory

    mem = EditMemory("t", root=tmp_path / "stores", embedder=embedder)
    yield mem
    mem.close()


@pytest.fixture()
def make_backend() -> Callable[..., RecordingBackend]:
    """Factory for :class:`RecordingBackend` instances."""
    return RecordingBackend


@pytest.fixture(scope="session")
def counterfact_cases() -> list[dict[str, Any]]:
    """The first 100 cases of the CounterFact training split."""
    with open(COUNTERFACT_TRAIN, encoding="utf-8") as fh:
        return json.load(fh)[:100]


@pytest.fixture(scope="session")
def counterfact_slice(tmp_path_factory: pytest.TempPathFactory, counterfact_cases) -> Path:
    """A 100-case CounterFact training file written to a temp dir."""
    path = tmp_path_factory.mktemp("cf") / "counterfact-100.json"
    path.write_text(json.dumps(counterfact_cases), "utf-8")
    return path


@pytest.fixture(scope="session")
def calibration(counterfact_slice: Path, embedder):
    """A similarity calibration computed on the 100-case slice (target specificity 0.98)."""
    from agentedit.scope import calibrate_similarity

    return calibrate_similarity(counterfact_slice, embedder, n_cases=100)


@pytest.fixture()
def small_torch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """One torch thread and a throwaway agentedit cache, for tests that edit tiny models' weights."""
    import torch

    monkeypatch.setenv("AGENTEDIT_CACHE", str(tmp_path / "cache"))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
