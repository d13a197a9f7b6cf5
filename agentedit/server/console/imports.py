"""File imports started from the console: one background job per upload, all or nothing, with progress.

The uploaded bytes go to a private temporary file named like the upload (its suffix picks JSONL, JSON or CSV) and
through ``Editor.import_edits``, the verb the CLI's ``agentedit import`` uses: the first bad line fails the whole
import with that line and the reason, and nothing is written. A job is seen only by the key and namespace that
started it; the last :data:`KEEP` jobs are kept in memory.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import AgentEditError
from ..errors import ApiError

logger = logging.getLogger(__name__)

KEEP = 50
SUFFIXES = (".jsonl", ".json", ".csv")


@dataclass
class Job:
    id: str
    namespace: str
    actor: str
    filename: str
    state: str = "running"  # running, done, failed
    done: int = 0
    total: int = 0
    imported: int = 0
    error: str = ""
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "filename": self.filename, "namespace": self.namespace, "state": self.state,
                "done": self.done, "total": self.total, "imported": self.imported, "error": self.error,
                "seconds": round((self.finished or time.time()) - self.started, 3)}


class Imports:
    """The console's import jobs (thread-safe)."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, job_id: str, *, namespace: str, actor: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.namespace == namespace and job.actor == actor else None

    def start(self, editor: Any, body: bytes, *, filename: str, namespace: str, actor: str) -> Job:
        name = Path(filename).name
        suffix = Path(name).suffix.lower()
        if suffix not in SUFFIXES:
            raise ApiError(400, f"import a .jsonl, .json or .csv file (got {name!r}); one edit per line or row",
                           code="invalid_import", param="filename")
        if not body.strip():
            raise ApiError(400, f"{name} is empty: nothing to import", code="invalid_import")
        job = Job(secrets.token_hex(8), namespace, actor, name)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP:
                self._jobs.popitem(last=False)
        threading.Thread(target=self._run, args=(editor, job, body, suffix), daemon=True,
                         name=f"console-import-{job.id}").start()
        return job

    @staticmethod
    def _run(editor: Any, job: Job, body: bytes, suffix: str) -> None:
        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        with tempfile.TemporaryDirectory(prefix="agentedit-import-") as tmp:
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(body)
            try:
                recs = editor.import_edits(path, namespace=job.namespace, actor=job.actor, progress=progress)
            except AgentEditError as exc:
                job.error = str(exc).replace(str(path), job.filename)
                job.state = "failed"
                logger.info("console import %s into %s failed: %s", job.filename, job.namespace, job.error)
            except Exception:  # noqa: BLE001 - the job reports it; the log has the traceback
                logger.exception("console import %s into %s failed", job.filename, job.namespace)
                job.error = "the import failed inside the server (the server log has the details); nothing was written"
                job.state = "failed"
            else:
                job.imported = len(recs)
                job.done = job.total = max(job.total, len(recs))
                job.state = "done"
            finally:
                job.finished = time.time()
