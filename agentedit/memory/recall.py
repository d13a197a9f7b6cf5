"""A cache of recent retrievals: a repeated question skips the index search and the ledger reads.

An entry holds what :meth:`~agentedit.memory.store.EditMemory.query` found for ``(namespace, question, k)`` (the
active records and their similarities, before the validity-time filter, which runs on every call) together with
the ledger's :meth:`~agentedit.memory.ledger.Ledger.version` read *before* the search. It answers only while the
ledger is still at that version, so any write through any process or replica (each logs an audit event) makes it
stale, and a write that raced the search can only make an entry stale, never wrong. Entries also expire after
``ttl`` seconds (60), which bounds how long a repaired index (a reconcile after a crashed writer changes the index, not
the ledger) can go unseen.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from typing import Callable

from ..types import EditRecord

Hits = list[tuple[EditRecord, float]]


class RecallCache:
    """LRU of ``(namespace, text, k) -> (ledger version, time, hits)``; ``size`` 0 turns it off."""

    def __init__(self, version: Callable[[], int], *, size: int = 2048, ttl: float = 60.0) -> None:
        self._version, self.size, self.ttl = version, size, ttl
        self._entries: OrderedDict[tuple[str, str, int], tuple[int, float, Hits]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, namespace: str, text: str, k: int) -> tuple[Hits | None, int]:
        """The cached hits (fresh copies of the records) when still valid, else None; and the ledger's version."""
        if self.size <= 0:
            return None, 0
        version = self._version()
        key = (namespace, text, k)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == version and time.monotonic() - entry[1] < self.ttl:
                self._entries.move_to_end(key)
                self.hits += 1
                return [(copy.copy(rec), sim) for rec, sim in entry[2]], version
            self.misses += 1
        return None, version

    def put(self, namespace: str, text: str, k: int, version: int, hits: Hits) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._entries[(namespace, text, k)] = (version, time.monotonic(), [(copy.copy(r), s) for r, s in hits])
            self._entries.move_to_end((namespace, text, k))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
