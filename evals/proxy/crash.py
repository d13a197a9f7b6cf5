"""3. Crash safety: a batch import killed with SIGKILL while single edits keep coming; after a restart the batch is
all there or absent, every acknowledged edit is present, and the index agrees with the ledger."""

from __future__ import annotations

import logging
import random
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable

import httpx

from .stores import admin_key, start_proxy

log = logging.getLogger("evals.proxy_bench")


# -- 3. crash safety -----------------------------------------------------------------------------------
def crash_trial(work: Path, upstream: str, batch: list[dict[str, Any]], trial: int, when: str,
                kill_after: Callable[[Path, float], bool]) -> dict[str, Any]:
    store = f"crash-{trial}"
    shutil.rmtree(work / "stores" / store, ignore_errors=True)
    key = admin_key(work, store)
    headers = {"authorization": f"Bearer {key}"}
    proxy = start_proxy(work, store, upstream, work / f"proxy-{store}.log")
    url = proxy.base_url
    acked: list[str] = []
    batch_reply: dict[str, Any] = {}
    killed = threading.Event()

    def singles() -> None:
        with httpx.Client(headers=headers, timeout=30) as c:
            for i in range(20000):
                if killed.is_set():
                    return
                try:
                    r = c.post(url + "/v1/edits", json={"id": f"ack-{i}", "statement": f"Acknowledged fact {i} holds the value {i * 7}."})
                except httpx.HTTPError:
                    return
                if r.status_code == 201:
                    acked.append(f"ack-{i}")

    def send_batch() -> None:
        try:
            r = httpx.post(url + "/v1/edits/batch", json={"edits": batch}, headers=headers, timeout=600)
            batch_reply["status"] = r.status_code
        except httpx.HTTPError as exc:
            batch_reply["error"] = type(exc).__name__

    writer = threading.Thread(target=singles, daemon=True)
    sender = threading.Thread(target=send_batch, daemon=True)
    writer.start()
    started = time.perf_counter()
    sender.start()
    store_dir = work / "stores" / store
    for _ in range(600_000):  # poll every ~1 ms, bounded (~10 min)
        if kill_after(store_dir, time.perf_counter() - started) or not sender.is_alive():
            break
        time.sleep(0.001)
    marker_seen = any(store_dir.glob("PENDING*"))
    kill_at = time.perf_counter() - started
    proxy.kill()
    killed.set()
    sender.join(timeout=30)
    writer.join(timeout=30)

    proxy = start_proxy(work, store, upstream, work / f"proxy-{store}.log")  # restart: reconciles on open
    url = proxy.base_url
    try:
        present: dict[str, str] = {}
        with httpx.Client(headers=headers, timeout=60) as c:
            for offset in range(0, 1_000_000, 1000):
                page = c.get(url + "/v1/edits", params={"status": "all", "limit": 1000, "offset": offset}).json()
                present.update({e["id"]: e["status"] for e in page["data"]})
                if not page["has_more"]:
                    break
            health = c.get(url + "/healthz").json()
            batch_ids = [e["id"] for e in batch]
            n_batch = sum(i in present for i in batch_ids)
            probe = c.post(url + "/v1/chat/completions", json={"model": "standin", "messages": [
                {"role": "user", "content": batch[0]["statement"]}]}).json()
        missing_acked = [i for i in acked if present.get(i) != "active"]
        return {"trial": trial, "kill": when, "kill_at_s": round(kill_at, 2), "index_write_in_progress": marker_seen,
                "batch_reply": batch_reply.get("status", batch_reply.get("error", "none")),
                "batch_present": n_batch, "batch_size": len(batch), "all_or_nothing": n_batch in (0, len(batch)),
                "acknowledged_singles": len(acked), "acknowledged_missing": len(missing_acked),
                "active_after_restart": health["active_edits"],
                "index_agrees": health["active_edits"] == sum(1 for s in present.values() if s == "active"),
                "batch_edit_served": batch[0]["id"] in probe["agentedit"]["applied"],
                "consistent_serving": (batch[0]["id"] in probe["agentedit"]["applied"]) == (n_batch == len(batch))}
    finally:
        proxy.stop()


class _BatchWrite:
    """Watches a store's write markers: the batch's is the one alive longer than ``min_age`` s (a single edit's
    lives for milliseconds), so a kill can be aimed at the batch's index write or just after its commit."""

    def __init__(self, min_age: float = 1.5) -> None:
        self.min_age = min_age
        self.first_seen: dict[str, float] = {}
        self.marker: str | None = None

    def _poll(self, store_dir: Path, t: float) -> None:
        for path in store_dir.glob("PENDING*"):
            seen = self.first_seen.setdefault(path.name, t)
            if self.marker is None and t - seen >= self.min_age:
                self.marker = path.name

    def during(self, store_dir: Path, t: float) -> bool:
        self._poll(store_dir, t)
        return self.marker is not None

    def after_commit(self, store_dir: Path, t: float) -> bool:
        self._poll(store_dir, t)
        return self.marker is not None and not (store_dir / self.marker).exists()


def measure_crash(work: Path, upstream: str, size: int, trials: int, seed: int) -> dict[str, Any]:
    batch = [{"id": f"batch-{i}", "statement": f"Batch fact {i}: the depot of line {i} is in sector {i % 97}.",
              "subject": f"line {i}"} for i in range(size)]
    rng = random.Random(seed)
    plans: list[tuple[str, Callable[[Path, float], bool]]] = [
        ("during embedding (2 s in)", lambda d, t: t >= 2.0),
        ("during the batch's index write", _BatchWrite().during),
        ("just after the batch's commit", _BatchWrite().after_commit),
    ]
    for _ in range(max(0, trials - 3)):
        at = rng.uniform(1.0, size / 300.0)
        plans.append((f"at a random moment ({at:.1f} s)", lambda d, t, at=at: t >= at))
    results = []
    for trial, (when, rule) in enumerate(plans[:trials]):
        res = crash_trial(work, upstream, batch, trial, when, rule)
        log.info("crash trial %d (%s): %s", trial, when, res)
        results.append(res)
    return {"batch_size": size, "trials": results,
            "all_or_nothing": all(r["all_or_nothing"] for r in results),
            "acknowledged_missing": sum(r["acknowledged_missing"] for r in results),
            "index_agrees": all(r["index_agrees"] and r["consistent_serving"] for r in results)}
