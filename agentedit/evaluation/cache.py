"""A backend wrapper that answers identical requests from a JSONL file (greedy decoding is deterministic).

It makes benchmark runs resumable after a crash and lets methods that send the
unedited request (passthrough) share one model call.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from ..backends.base import Completion


class CachedBackend:
    def __init__(self, inner: Any, path: str | Path) -> None:
        self.inner = inner
        self.name, self.capabilities = inner.name, inner.capabilities
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()
        self.calls = 0
        self.hits = 0
        if self.path.exists():
            for line in self.path.read_text("utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self._cache[row["key"]] = row["text"]
                except (json.JSONDecodeError, KeyError):
                    continue  # a line cut short by a crash

    @staticmethod
    def key(kind: str, payload: Any, params: dict[str, Any]) -> str:
        """Chat payloads are message lists and text payloads strings, so they never share a key."""
        return hashlib.sha256(json.dumps([payload, params], sort_keys=True).encode()).hexdigest()

    def _get(self, kind: str, payload: Any, params: dict[str, Any], call: Any) -> Completion:
        key = self.key(kind, payload, params)
        with self._lock:
            if key in self._cache:
                self.hits += 1
                return Completion(text=self._cache[key], model=self.name)
        comp = call()
        with self._lock:
            self.calls += 1
            self._cache[key] = comp.text
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"key": key, "text": comp.text}, ensure_ascii=False) + "\n")
        return comp

    @property
    def size(self) -> int:
        """Distinct requests the model has answered for this run, in every process that worked on it."""
        with self._lock:
            return len(self._cache)

    def chat(self, messages: Any, **params: Any) -> Completion:
        return self._get("chat", list(messages), params, lambda: self.inner.chat(messages, **params))

    async def achat(self, messages: Any, **params: Any) -> Completion:
        return self.chat(messages, **params)

    def complete(self, prompt: str, **params: Any) -> Completion:
        return self._get("text", prompt, params, lambda: self.inner.complete(prompt, **params))

    async def acomplete(self, prompt: str, **params: Any) -> Completion:
        return self.complete(prompt, **params)

    def close(self) -> None:
        self.inner.close()
