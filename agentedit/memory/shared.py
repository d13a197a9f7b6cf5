"""What a store keeps beside its edits, where every process of the store finds it.

A SQLite store keeps its settings in ``store.json`` and its files (a trained scope model) in its folder: one
machine reads them. A PostgreSQL store serves replicas on other hosts without a shared disk, so its settings
are the ``store_config`` entry of the ``meta`` table and its files are rows of the ``files`` table; a replica
copies a file to its own folder when the copy there differs (:func:`materialize`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..types import utc_now
from .ledger import Ledger

logger = logging.getLogger(__name__)

CONFIG_KEY = "store_config"


def _write_json(path: Path, cfg: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cfg, indent=2, sort_keys=True), "utf-8")
    os.replace(tmp, path)


def load_config(ledger: Ledger, path: Path, *, store: str, embedder: str) -> dict[str, Any]:
    """The store's settings (created on first open); refuses an embedder other than the one the store was built with."""
    if ledger.shared:
        raw = ledger.get_meta(CONFIG_KEY)
        where = f"the meta table of {ledger.path}"
    else:
        raw = path.read_text("utf-8") if path.exists() else None
        where = str(path)
    if raw is None:
        cfg = {"version": 1, "embedder": embedder, "created_at": utc_now(), "scope": {}}
        save_config(ledger, path, cfg)
        return cfg
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StoreError(f"the settings of store {store!r} in {where} are not valid JSON ({exc}); restore them or "
                         "delete the store") from None
    if cfg.get("embedder") != embedder:
        raise StoreError(f"store {store!r} was built with embedder {cfg.get('embedder')!r} but {embedder!r} is in use; "
                         "open it with the same embedder or export and re-import the edits")
    return cfg


def save_config(ledger: Ledger, path: Path, cfg: dict[str, Any]) -> None:
    if ledger.shared:
        ledger.set_meta(CONFIG_KEY, json.dumps(cfg, sort_keys=True))
    else:
        _write_json(path, cfg)


def publish(ledger: Ledger, folder: Path, prefix: str) -> int:
    """Store every file under ``folder`` as ``prefix/<relative path>`` in a shared ledger, replacing what was there
    under ``prefix`` (one transaction); returns how many files. A SQLite ledger keeps files on disk: returns 0."""
    if not ledger.shared:
        return 0
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    with ledger.transaction() as conn:
        conn.execute("DELETE FROM files WHERE path LIKE ?", (prefix + "/%",))
        for p in files:
            data = p.read_bytes()
            conn.execute("INSERT INTO files (path, sha256, data, updated_at) VALUES (?, ?, ?, ?)",
                         (f"{prefix}/{p.relative_to(folder).as_posix()}", hashlib.sha256(data).hexdigest(), data,
                          utc_now()))
    logger.info("published %d file(s) of %s to %s as %s", len(files), folder, ledger.path, prefix)
    return len(files)


def materialize(ledger: Ledger, prefix: str, folder: Path) -> int:
    """Copy the shared files under ``prefix`` into ``folder`` where the copy there differs; returns how many were
    written (0 for a SQLite ledger, or when nothing was published)."""
    if not ledger.shared:
        return 0
    rows = ledger.rows("SELECT path, sha256 FROM files WHERE path LIKE ? ORDER BY path", (prefix + "/%",))
    written = 0
    for rel, sha in rows:
        target = folder / rel[len(prefix) + 1:]
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == sha:
            continue
        data = bytes(ledger.rows("SELECT data FROM files WHERE path = ?", (rel,))[0][0])
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        written += 1
    if written:
        logger.info("copied %d shared file(s) under %s from %s into %s", written, prefix, ledger.path, folder)
    return written


__all__ = ["load_config", "materialize", "publish", "save_config"]
