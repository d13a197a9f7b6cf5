"""The methods an evaluation compares, by name: :data:`METHODS`, a registry of factories ``factory(ctx, memory)``
that return an object speaking the :class:`~agentedit.editor.Editor` API the runner uses (``ask``, ``prepare``).

In-context methods are Editors with one scope checker each (``agentedit-relation``, ``agentedit-similarity``...);
parametric methods (``rome``, ``memit``, ``ft``, ``alphaedit``, for ``hf:`` models) live in
:mod:`agentedit.evaluation.parametric`, imported when one of them is asked for. More plug in with
:func:`register_method` or ``METHODS.add``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..registry import Registry
from ..scope import CHECKERS, DEFAULT_CHECKER
from .loaders import data_dir

if TYPE_CHECKING:
    from ..memory import EditMemory
    from ..settings import Settings
    from .config import RunConfig


@dataclass
class RunContext:
    """What a method's factory gets: the run's options, the run's (cached) backend and its folder."""

    config: RunConfig
    backend: Any
    out: Path

    @property
    def settings(self) -> Settings:
        return self.config.settings


EditorFactory = Callable[[RunContext, "EditMemory"], Any]


def _in_context(scope: str, injection: str = "facts", **options: Any) -> EditorFactory:
    """An in-context method; ``options`` go to the Editor (single pass unless they say ``multihop``)."""
    options = {"multihop": "never", **options}

    def make(ctx: RunContext, memory: EditMemory) -> Any:
        from ..editor import Editor

        s = ctx.settings
        kw: dict[str, Any] = {}
        if injection == "ike":
            pool = s.injection.demo_pool or str(data_dir(ctx.config.data_dir) / "counterfact" / "counterfact-train.json")
            kw = {"injection": "ike", "demo_pool": pool}
        if scope == "trained":
            kw["scope_model"] = s.scope.model_dir
        return Editor(memory=memory, backend=ctx.backend, scope=scope, max_tokens=ctx.config.max_tokens, **options, **kw)

    return make


METHODS: Registry[EditorFactory] = Registry("method", "add one with register_method(name, factory)")


def _register_builtin() -> None:
    METHODS.add("none", _in_context("none"))
    METHODS.add("prefix-all", _in_context("prefix-all"))
    METHODS.add("ike", _in_context("prefix-all", "ike"))
    METHODS.add("agentedit", _in_context(DEFAULT_CHECKER))
    for checker in CHECKERS:  # one method per scope checker: agentedit-relation, agentedit-similarity, ...
        if checker not in ("none", "prefix-all"):
            METHODS.add(f"agentedit-{checker}", _in_context(checker))
    # Multi-hop: our decomposition (routing per question, the scope check settles each hop) and the MeLLo
    # protocol (every question decomposed, top-1 retrieved fact per sub-question, the model judges it).
    METHODS.add("agentedit-decompose", _in_context(DEFAULT_CHECKER, multihop="auto"))
    METHODS.add("mello", _in_context("prefix-all", multihop="always", resolve="model", follow_edits=False))
    for name in ("rome", "memit", "ft", "alphaedit", "grace", "wise", "recipe"):
        METHODS.add(name, f"agentedit.evaluation.parametric:{name}_method")


_register_builtin()


def register_method(name: str, factory: EditorFactory) -> None:
    """Make ``name`` usable in ``--methods``; ``factory(ctx, memory)`` returns an Editor-like object. A second
    registration of one name replaces the first (``METHODS.add(name, factory, replace=True)``)."""
    METHODS.add(name, factory, replace=True)
