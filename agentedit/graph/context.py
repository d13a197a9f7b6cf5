"""What the workflow's nodes receive through the LangGraph runtime context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..injection import DemoPool, InjectionMode

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..memory.store import EditMemory
    from ..routes import Routes
    from ..scope.base import ScopeChecker
    from ..scope.conflict import ConflictMatcher


@dataclass
class WorkflowContext:
    """The memory, backend, scope checker and edit routes, plus retrieval, injection and decomposition settings."""

    memory: "EditMemory"
    backend: "Backend | None"  # None: prepare only (no node may call the model)
    checker: "ScopeChecker"
    routes: "Routes"
    k: int = 4
    injection: InjectionMode = "facts"
    demos: DemoPool | None = None
    n_demos: int = 6
    multihop: str = "never"  # never | always | auto (see agentedit.graph.multihop)
    hop_limit: int = 4
    resolve: str = "edit"  # edit: an in-scope edit replaces a contradicted answer; model: the model decides (MeLLo)
    hop_max_tokens: int = 64
    follow_edits: bool = True
    window_turns: int = 3
    matcher: "ConflictMatcher | None" = None  # two in-scope edits of one fact: only the newer is injected  # earlier user/assistant turns a follow-up's pronouns are resolved against  # settle the hops stored edits answer on their own before asking the model
