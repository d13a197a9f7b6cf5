"""The parametric route: edits written into a local model's weights, recorded in the edit memory.

Every edit is a record in the memory like any other (``method`` names the editor,
``metadata["delta"]`` the delta that holds it), and every delta is a safetensors file in
``stores/<name>/deltas/``, numbered in the order applied. Opening the store on the same model
re-applies the deltas of active records in that order; ``forget`` reverts a delta bit for bit
(and re-edits the other records of a batch delta, so they keep holding).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import ConfigError, EditConflictError, EditError, StoreError
from ..memory.writes import check_version
from ..parametric.base import ParametricMethod
from ..parametric.context import EditContext
from ..parametric.corpus import Corpus
from ..parametric.deltas import Delta
from ..parametric.requests import EditRequest
from ..records import build_records
from ..scope.text import find_subject, subject_names
from ..types import EditRecord

logger = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{8})-(d_[0-9a-f]+)\.safetensors$")
BATCHED = ("memit",)  # methods that write one delta per batch; the others write one delta per edit


class WeightRoute:
    """Keeps a local model's weights in step with the parametric records of an edit memory (an
    :class:`~agentedit.routes.base.EditRoute`)."""

    injects = False
    name = "weights"

    def __init__(self, memory: Any, backend: Any, *, corpus: Corpus | None = None, cache_dir: str | Path | None = None,
                 configs: Mapping[str, Any] | None = None) -> None:
        from ..parametric import METHODS

        self.memory, self.backend = memory, backend
        self.dir = Path(memory.dir) / "deltas"
        self._corpus, self._cache_dir = corpus, cache_dir
        self.configs = dict(configs or {})
        self._editors = METHODS
        self._ctx: EditContext | None = None
        self._loaded = False

    @property
    def ctx(self) -> EditContext:
        if self._ctx is None:
            from ..provision import cache_dir

            self._ctx = EditContext.create(self.backend, corpus=self._corpus,
                                           cache_dir=self._cache_dir if self._cache_dir is not None else cache_dir(),
                                           store_dir=self.memory.dir, embedder=getattr(self.memory, "embedder", None))
        return self._ctx

    def editor(self, method: str) -> ParametricMethod:
        from ..parametric import make_method

        return make_method(method, self.ctx, self.configs.get(method))

    # -- files ---------------------------------------------------------------------------------
    def _files(self) -> dict[str, tuple[int, Path]]:
        out = {}
        if self.dir.is_dir():
            for f in self.dir.iterdir():
                m = _FILE.match(f.name)
                if m:
                    out[m.group(2)] = (int(m.group(1)), f)
        return out

    def _save(self, delta: Delta) -> Path:
        seq = max((s for s, _ in self._files().values()), default=0) + 1
        return delta.save(self.dir / f"{seq:08d}-{delta.id}.safetensors")

    def _unlink(self, delta_id: str) -> None:
        hit = self._files().get(delta_id)
        if hit:
            hit[1].unlink(missing_ok=True)

    # -- loading -------------------------------------------------------------------------------
    def load(self) -> None:
        """Apply the saved deltas of active parametric records (once per route), in the order they were made."""
        if self._loaded:
            return
        wanted = {str(r.metadata.get("delta")) for r in self.memory.list(include_inactive=False)
                  if r.method in self._editors and r.metadata.get("delta")}
        if not wanted:  # nothing to re-apply: do not load the model for it
            self._loaded = True
            return
        ctx = self.ctx
        files = self._files()
        missing = sorted(wanted - set(files))
        if missing:
            raise StoreError(f"store {self.memory.name!r}: delta file(s) {', '.join(missing)} missing from {self.dir}; "
                             "restore them, or forget the edits that use them")
        for delta_id, (_, path) in sorted(files.items(), key=lambda kv: kv[1][0]):
            if delta_id not in wanted:
                continue
            delta = Delta.load(path, device=str(ctx.backend.device))
            if delta.meta.get("model") not in (None, ctx.fingerprint):
                raise StoreError(f"store {self.memory.name!r} holds weight edits made for another model "
                                 f"({delta.meta.get('model')}, this one is {ctx.fingerprint}); open it with that model")
            self.editor(delta.method)  # an editor acting through hooks (GRACE, WISE) installs them first
            with ctx.backend.lock:
                ctx.stack.push(delta)
        self._loaded = True
        logger.info("store %s: %d weight delta(s) re-applied", self.memory.name, len(wanted))

    # -- writes --------------------------------------------------------------------------------
    def edit_many(self, items: Iterable[Mapping[str, Any] | EditRecord], *, method: str, namespace: str, actor: str = "user",
                  progress: Callable[[int, int], None] | None = None) -> list[EditRecord]:
        """Validate all, write each delta to the weights and to disk, then record the edits; on error nothing stays."""
        if method not in self._editors:
            raise EditError(f"{method!r} is not a parametric method; choose one of {', '.join(self._editors)}")
        recs = build_records(list(items), namespace=namespace, actor=actor)
        reqs = [EditRequest.from_record(r, where=f"edit #{i}") for i, r in enumerate(recs)]
        self.load()
        editor = self.editor(method)
        groups = [list(range(len(recs)))] if method in BATCHED else [[i] for i in range(len(recs))]
        done: list[Delta] = []
        try:
            for group in groups:
                delta = editor.apply([reqs[i] for i in group])
                done.append(delta)
                delta.meta["records"] = [recs[i].id for i in group]
                delta.meta["namespace"] = namespace
                self._save(delta)
                for i in group:
                    recs[i].method = method
                    recs[i].metadata = {**recs[i].metadata, "delta": delta.id}
                if progress:
                    progress(group[-1] + 1, len(recs))
            out = self.memory.add_many([], namespace=namespace, actor=actor, records=recs)
        except BaseException:
            for delta in reversed(done):
                self._discard(delta.id)
            raise
        self._drop_unused(namespace, [r.supersedes for r in out if r.supersedes])
        return out

    def _discard(self, delta_id: str) -> None:
        with self.ctx.backend.lock:
            if delta_id in self.ctx.stack:
                self.ctx.stack.remove(delta_id)
        self._unlink(delta_id)

    def _holders(self, delta: Delta, namespace: str, but: str | None = None) -> list[EditRecord]:
        """Active records whose edit lives in ``delta`` (a delta's records are one namespace's: ids are unique
        only per namespace; deltas written before they named it are looked up in ``namespace``)."""
        ns = str(delta.meta.get("namespace") or namespace)
        ids = [i for i in delta.meta.get("records", []) if i != but]
        recs = self.memory.ledger.get_many(ns, ids) if ids else {}
        return [recs[i] for i in ids if i in recs and recs[i].status == "active" and recs[i].metadata.get("delta") == delta.id]

    def _drop_unused(self, namespace: str, record_ids: Sequence[str]) -> None:
        """Revert the deltas of superseded parametric records of ``namespace`` once no active record needs them."""
        for rid in record_ids:
            old = self.memory.ledger.get(namespace, rid)
            did = old.metadata.get("delta") if old else None
            if did and did in self.ctx.stack and not self._holders(self.ctx.stack.get(did), namespace):
                self._discard(did)

    def forget(self, edit_id: str, *, namespace: str | None = None, actor: str = "user",
               expected_version: int | None = None) -> EditRecord:
        """Retract a parametric edit and restore the weights (other edits of its batch are re-applied).

        The record is retracted only at the version read here (or ``expected_version``): if it changed
        meanwhile, the weights are put back and the conflict is raised."""
        rec = self.memory.get(edit_id, namespace=namespace)
        check_version(rec, expected_version)
        if rec.status != "active":
            raise EditConflictError(f"edit {edit_id!r} was already {rec.status}")
        ns, at = rec.namespace, rec.version
        self.load()
        delta_id = rec.metadata.get("delta")
        if not delta_id or delta_id not in self.ctx.stack:
            return self.memory.delete(edit_id, namespace=ns, actor=actor, expected_version=at)
        delta = self.ctx.stack.get(delta_id)
        others = self._holders(delta, ns, but=edit_id)
        with self.ctx.backend.lock:
            self.ctx.stack.remove(delta_id)
        try:
            out = self.memory.delete(edit_id, namespace=ns, actor=actor, expected_version=at)
        except BaseException:
            with self.ctx.backend.lock:
                self.ctx.stack.push(delta)
            raise
        self._unlink(delta_id)
        if others:  # the rest of a batch: edit them again, without the forgotten one
            new = self.editor(delta.method).apply([EditRequest.from_record(r) for r in others])
            new.meta["records"] = [r.id for r in others]
            new.meta["namespace"] = ns
            self._save(new)
            for r in others:
                self.memory.update(r.id, {"metadata": {**r.metadata, "delta": new.id}}, namespace=ns, actor=actor)
        return out

    # -- the EditRoute protocol ----------------------------------------------------------------------
    def owns(self, record: EditRecord) -> bool:
        return record.method in self._editors

    def write(self, records: Sequence[Mapping[str, Any] | EditRecord], *, method: str, namespace: str, actor: str,
              progress: Callable[[int, int], None] | None = None) -> list[EditRecord]:
        return self.edit_many(records, method=method, namespace=namespace, actor=actor, progress=progress)

    def update(self, edit_id: str, changes: Mapping[str, Any], *, namespace: str | None, actor: str,
               expected_version: int | None = None) -> EditRecord:
        raise EditError(f"edit {edit_id!r} lives in the weights and cannot be changed in place; forget it and edit again")

    def retract(self, edit_id: str, *, namespace: str | None, actor: str,
                expected_version: int | None = None) -> EditRecord:
        return self.forget(edit_id, namespace=namespace, actor=actor, expected_version=expected_version)

    def bearing_on(self, query: str, namespace: str | None = None) -> list[EditRecord]:
        """Active weight edits whose subject (or an alias) the query names, matched as the scope check matches
        subjects: whole words of the normalised texts, so "Paris" does not match "Parisian" nor "Rome" "Romeo"."""
        if not query.strip():
            return []
        return [r for r in self.memory.list(namespace=namespace)
                if r.method in self._editors and r.subject and find_subject(query, subject_names(r))]



def check_method(method: str, backend: Any, model: str) -> str:
    """``method`` if it names a parametric method the backend can run, else a ConfigError saying what to do."""
    from ..parametric import METHODS

    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose 'in-context' or one of {', '.join(METHODS)}")
    if not getattr(getattr(backend, "capabilities", None), "editable_weights", False):
        raise ConfigError(f"method {method!r} edits weights, which {model!r} does not expose; "
                          "use a local model (hf:...) or method='in-context'")
    return method


def default_method(backend: Any) -> str:
    """ROME for models whose weights can be edited, in-context otherwise."""
    return "rome" if getattr(getattr(backend, "capabilities", None), "editable_weights", False) else "in-context"
