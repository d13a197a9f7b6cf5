"""A run folder: ``run.json`` (the configuration's fingerprint, the wall time of every process that worked on the run)
and the per-probe rows, ``cases.jsonl`` while the run goes on, ``cases.jsonl.gz`` once it has finished."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .config import RunConfig

CASES = "cases.jsonl"
PACKED = CASES + ".gz"


def _parse_rows(text: str) -> list[dict[str, Any]]:
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short when a process was killed mid-write
            continue
    return rows


def read_rows(out: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The per-probe rows of a run folder: ``cases.jsonl`` while it runs, ``cases.jsonl.gz`` once it has finished."""
    plain, packed = Path(out) / CASES, Path(out) / PACKED
    if plain.exists():
        return _parse_rows(plain.read_text("utf-8"))
    if packed.exists():
        return _parse_rows(gzip.decompress(packed.read_bytes()).decode("utf-8"))
    raise FileNotFoundError(f"{out} holds no {CASES} or {PACKED}; is it an `agentedit eval` run folder?")


class Rows:
    """cases.jsonl, appended as probes finish; already-finished keys are skipped on resume.

    A finished run is packed to cases.jsonl.gz (a full run's rows are several MB of repetitive JSON); resuming it
    unpacks it again first, so rows are only ever appended to the plain file.
    """

    def __init__(self, out: Path) -> None:
        self.path, self.packed = path, packed = out / CASES, out / PACKED
        if not path.exists() and packed.exists():
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(gzip.decompress(packed.read_bytes()))
            os.replace(tmp, path)
            packed.unlink()
        self.rows: list[dict[str, Any]] = _parse_rows(path.read_text("utf-8")) if path.exists() else []
        self.done = {self.key(r) for r in self.rows}
        self._fh = open(path, "a", encoding="utf-8")

    @staticmethod
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["dataset"], r["method"], r["size"], r["case_id"], r["probe_idx"])

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.done.add(self.key(row))
        self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def pack(self) -> None:
        """Compress the finished rows to cases.jsonl.gz (written whole, then swapped in) and drop the plain file."""
        self.close()
        tmp = self.packed.with_name(self.packed.name + ".tmp")
        tmp.write_bytes(gzip.compress(self.path.read_bytes(), mtime=0))
        os.replace(tmp, self.packed)
        self.path.unlink()


class RunFile:
    """run.json: refuses a folder that holds another configuration's results, and adds up the wall time of the
    processes that worked on the run (stopped, resumed), saved every so often so a killed one loses little."""

    SAVE_EVERY_S = 30.0

    def __init__(self, out: Path, config: RunConfig) -> None:
        self.path, self.config = out / "run.json", config
        prev: dict[str, Any] = {}
        if self.path.exists():
            prev = json.loads(self.path.read_text("utf-8"))
            if prev.get("fingerprint") not in (config.fingerprint(), config.fingerprint(legacy=True)):
                raise ConfigError(f"{out} holds results of a different configuration; use another --run-name or --fresh")
        self.spent_before = float(prev.get("wall_s_spent", 0.0))
        self.sessions: list[dict[str, Any]] = list(prev.get("sessions", []))
        self.started: float | None = None
        self._saved_at = 0.0
        self.save()

    def start(self) -> float:
        self.started = time.time()
        return self.started

    def wall_s(self) -> float:
        """Wall time of every process on this run so far, this one included."""
        return self.spent_before + (time.time() - self.started if self.started is not None else 0.0)

    def due(self) -> bool:
        return time.time() - self._saved_at >= self.SAVE_EVERY_S

    def save(self, rows: int | None = None) -> None:
        sessions = list(self.sessions)
        if self.started is not None:
            self._saved_at = time.time()
            sessions.append({"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started)),
                             "wall_s": round(self._saved_at - self.started, 1), "rows_done": rows})
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": self.config.fingerprint(), "config": self.config.options(),
                                   "wall_s_spent": round(self.wall_s(), 1), "sessions": sessions}, indent=2), "utf-8")
        os.replace(tmp, self.path)
