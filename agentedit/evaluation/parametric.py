"""Parametric methods as evaluation methods (``--methods rome,memit,ft,alphaedit,grace,wise,recipe`` with an ``hf:`` model).

The runner writes each protocol's edits into the memory itself; :class:`WeightSyncMethod` makes
the weights follow: before each question it applies the memory's active edits that the model
does not hold yet (one MEMIT batch, or one edit at a time for the others) and reverts those that
were retracted. Questions then go to the edited model untouched (no in-context injection). The deltas are kept
in the run's folder (:class:`~agentedit.evaluation.lifelong.DeltaCache`): a resumed run reloads them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..scope.text import find_subject, subject_names
from ..settings import ModelSpec
from ..types import Answer

logger = logging.getLogger(__name__)

PARAMETRIC = ("rome", "memit", "ft", "alphaedit", "grace", "wise", "recipe")


class WeightSyncMethod:
    """Speaks the Editor API the runner uses (``ask``, ``prepare``, ``edit_many``, ``forget``) over edited weights."""

    def __init__(self, model: str | ModelSpec, memory: Any, method: str, *, max_tokens: int = 24, configs: Any = None,
                 backend: Any = None, deltas: Any = None, corpus: Any = None) -> None:
        from ..backends import resolve_backend
        from ..editor import Editor
        from ..routes.weights import BATCHED, WeightRoute

        if backend is None:
            spec = ModelSpec.parse(model)
            if spec.kind != "hf":
                raise ConfigError(f"method {method!r} edits weights: run the evaluation with an hf: model, not {str(spec)!r}")
            backend = resolve_backend(spec, default_params={"max_tokens": max_tokens})
        self.method, self.memory, self.backend = method, memory, backend
        self.route = WeightRoute(memory, backend, corpus=corpus, configs=configs)
        self._inner = Editor(memory=memory, backend=backend, scope="none", max_tokens=max_tokens, method="in-context")
        self._batched = method in BATCHED
        self._held: dict[str, str] = {}  # record id -> delta id
        self.cache = None
        if deltas is not None:  # computed deltas kept under this folder: a stopped run resumes without recomputing
            from .lifelong import DeltaCache

            self.cache = DeltaCache(deltas)

    def sync(self) -> None:
        """Make the weights hold exactly the memory's active edits."""
        from ..parametric.requests import EditRequest

        active = {r.id: r for r in self.memory.list()}
        editor = self.route.editor(self.method)
        lost = {did for rid, did in self._held.items() if rid not in active}  # deltas holding a retracted edit
        self._held = {rid: did for rid, did in self._held.items() if did not in lost}
        for did in lost:
            if did in self.route.ctx.stack:
                editor.revert(did)
        new = [r for rid, r in active.items() if rid not in self._held]  # incl. the rest of a reverted batch
        if not new:
            return
        groups = [new] if self._batched else [[r] for r in new]
        for group in groups:
            reqs = [EditRequest.from_record(r) for r in group]
            delta = self.cache.apply(editor, reqs) if self.cache is not None else editor.apply(reqs)
            for r in group:
                self._held[r.id] = delta.id

    def ask(self, question: str, **kw: Any) -> Answer:
        self.sync()
        ans = self._inner.ask(question, **kw)
        # the memory's records (the runner writes them in-context; the weights follow): subject matched as the scope check does
        named = [r.id for r in self.memory.list() if r.subject and find_subject(question, subject_names(r))]
        ans.applied, ans.mode = named, "parametric"
        return ans

    def prepare(self, question: str, **kw: Any) -> dict[str, Any]:
        self.sync()
        return self._inner.prepare(question, **kw)

    def top1(self, prefix: str, target: str) -> tuple[list[int], list[int]]:
        """Teacher-forced top-1 predictions of the edited model."""
        self.sync()
        return self.backend.top1(prefix, target)

    def edit_many(self, records: Any, **kw: Any) -> Any:
        return self.memory.add_many(records, **kw)

    def forget(self, edit_id: str, **kw: Any) -> Any:
        return self.memory.delete(edit_id, **kw)


def _make(method: str, ctx: Any, memory: Any) -> WeightSyncMethod:
    corpus = None
    if ctx.settings.weights.stats_corpus is not None:  # the key statistics over the user's text, as the Editor does
        from ..parametric.corpus import TextCorpus

        corpus = TextCorpus(Path(ctx.settings.weights.stats_corpus))
    return WeightSyncMethod(ctx.settings.model.spec, memory, method, max_tokens=ctx.config.max_tokens,
                            configs=ctx.settings.weights.configs, deltas=ctx.out / "deltas" / method, corpus=corpus)


# The runner's factories (``factory(ctx, memory)``), registered lazily in agentedit.evaluation.methods.METHODS.
def rome_method(ctx: Any, memory: Any) -> WeightSyncMethod:
    return _make("rome", ctx, memory)


def memit_method(ctx: Any, memory: Any) -> WeightSyncMethod:
    return _make("memit", ctx, memory)


def ft_method(ctx: Any, memory: Any) -> WeightSyncMethod:
    return _make("ft", ctx, memory)


def alphaedit_method(ctx: Any, memory: Any) -> WeightSyncMethod:
    return _make("alphaedit", ctx, memory)


def grace_method(ctx: Any, memory: Any) -> WeightSyncMethod:
    return _make("grace", ctx, memory)


def wise_method(ctx: Any, memory: Any) -> WeightSyncMethod:
    return _make("wise", ctx, memory)


def recipe_method(ctx: Any, memory: Any) -> WeightSyncMethod:
    """RECIPE needs a trained encoder and sentinel: the run's settings name their folder (``RECIPEConfig(folder=...)``,
    ``evals/lifelong_bench.py --recipe-dir``), as the run's own store has none."""
    return _make("recipe", ctx, memory)


def register_parametric_methods() -> None:
    """Add ``rome``, ``memit``, ``ft``, ``alphaedit``, ``grace``, ``wise`` and ``recipe`` to the runner's methods (they are registered already;
    kept for callers that restored them after replacing one)."""
    from .methods import register_method

    for name in PARAMETRIC:
        register_method(name, globals()[f"{name}_method"])
