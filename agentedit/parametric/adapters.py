"""Editors whose edits live beside the weights (GRACE's codebook, WISE's side memory), not in them.

Such an editor's :class:`~agentedit.parametric.deltas.Delta` has no weight parts: its tensors are in
``extras`` and the :class:`DeltaStack` keeps it in order like any other delta, so the route's
files, retraction and reloading work unchanged. What the deltas do is one permanent forward hook
on one module per editor and model (an :class:`Adapter`), whose state is rebuilt from the
editor's active deltas, in order, whenever they change: removing a delta gives exactly the state
that the remaining deltas build, and the weights are never written. Inside
:meth:`DeltaStack.pristine` (statistics) the hook stands aside.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, ClassVar, Iterator, Sequence

from ..errors import ConfigError, EditError
from .base import ParametricMethod
from .deltas import Delta
from .requests import EditRequest

logger = logging.getLogger(__name__)


class Adapter:
    """The hook of one adapter method on one model; its state follows the method's active deltas."""

    def __init__(self, ctx: Any, method: "AdapterMethod", path: str) -> None:
        self.ctx, self.method, self.path = ctx, method, path
        self.pending: list[Delta] = []  # computed in the current apply(), not on the stack yet
        self._key: tuple[str, ...] = ()
        self._state: Any = None
        self.aside = False
        self.handle = ctx.backend.model.get_submodule(path).register_forward_hook(self._hook)

    def active(self) -> list[Delta]:
        return [d for d in self.ctx.stack.deltas if d.method == self.method.name] + self.pending

    def state(self) -> Any:
        """The state the active deltas build (extended in place when deltas were only added since the last call)."""
        deltas = self.active()
        key = tuple(d.id for d in deltas)
        if key != self._key:
            for d in deltas:
                if d.meta.get("module", self.path) != self.path:
                    raise EditError(f"{self.method.name} delta {d.id} was made at {d.meta['module']}, this model's "
                                    f"{self.method.name} edits live at {self.path}; use the layer it was made with")
            grown = len(key) >= len(self._key) and key[: len(self._key)] == self._key and self._state is not None
            start = len(self._key) if grown else 0
            state = self._state if grown else self.method.empty_state()
            self._state = self.method.extend(state, deltas[start:])
            self._key = key
        return self._state

    @contextmanager
    def standing_aside(self) -> Iterator[None]:
        """Within the block this adapter leaves the module's output alone."""
        was, self.aside = self.aside, True
        try:
            yield
        finally:
            self.aside = was

    def _hook(self, mod: Any, args: tuple[Any, ...], output: Any) -> Any:
        if self.ctx.stack.paused or self.aside or not args:
            return None
        if not self.pending and not any(d.method == self.method.name for d in self.ctx.stack.deltas):
            return None
        first = output[0] if isinstance(output, tuple) else output
        new = self.method.forward(self.state(), args[0], first)
        return (new, *output[1:]) if isinstance(output, tuple) else new


class AdapterMethod(ParametricMethod):
    """An editor acting through an :class:`Adapter` on one module; subclasses give the module, the state it
    builds from deltas (:meth:`empty_state`, :meth:`extend`), the hook's :meth:`forward` and :meth:`edit_one`."""

    adapter_type: ClassVar[type[Adapter]] = Adapter  # RECIPE's hooks the body instead (recipe.PromptAdapter)

    def __init__(self, ctx: Any, config: Any = None) -> None:
        super().__init__(ctx, config)
        path = self.module_path()
        key = ("adapter", self.name)
        existing = ctx.extra.get(key)
        if existing is None:
            ctx.extra[key] = self.adapter_type(ctx, self, path)
        elif existing.path != path:
            raise ConfigError(f"{self.name} already keeps its edits at {existing.path} on this model; a second "
                              f"{self.name} editor at {path} would mix them up: use one layer per model")
        else:
            existing.method = self  # the newest editor's settings serve the hook
        self.adapter: Adapter = ctx.extra[key]

    @property
    def layer(self) -> int:
        return self.config.layer if self.config.layer is not None else late_layer(self.ctx.layout.n_layers)

    def module_path(self) -> str:
        return self.ctx.layout.mlp_out_path(self.layer)

    # -- what subclasses implement -----------------------------------------------------------------
    def empty_state(self) -> Any:
        raise NotImplementedError

    def extend(self, state: Any, deltas: Sequence[Delta]) -> Any:
        raise NotImplementedError

    def forward(self, state: Any, x: Any, out: Any) -> Any:
        raise NotImplementedError

    def edit_one(self, req: EditRequest) -> dict[str, Any]:
        """The extras (tensors) of one request's edit; the edits before it are in place."""
        raise NotImplementedError

    # -- compute ------------------------------------------------------------------------------------
    def compute(self, requests: Sequence[EditRequest]) -> Delta:
        """One edit after another, each seeing those before it; one delta holds them all (extras concatenated)."""
        import torch

        parts: list[dict[str, Any]] = []
        try:
            for req in requests:
                extras = self.edit_one(req)
                parts.append(extras)
                self.adapter.pending.append(Delta(method=self.name, parts={}, extras=extras,
                                                  meta={"module": self.adapter.path, **self.delta_meta()}))
        finally:
            self.adapter.pending.clear()
        extras = {k: torch.cat([p[k] for p in parts], dim=self.cat_dim(k)) for k in parts[0]}
        delta = self._delta({}, **extras)
        delta.meta.update({"module": self.adapter.path, **self.delta_meta()})
        return delta

    def delta_meta(self) -> dict[str, Any]:
        """What a delta records beside its tensors (WISE: how its side memories are laid out)."""
        return {}

    def cat_dim(self, key: str) -> int:
        return 0


def late_layer(n_layers: int) -> int:
    """A late layer (GRACE and WISE edit one of the last third: layer 27 of 32 in WISE's LLaMA-2 setup)."""
    return min(n_layers - 1, max(0, round(n_layers * 0.8) - 1))


def token_rows(ctx: Any, req: EditRequest, prefix: str = "") -> tuple[list[int], list[int], list[int]]:
    """``(ids, positions, labels)`` for teacher forcing: ``ids`` is prompt + target without its last token, and the
    hidden state at ``positions[i]`` should predict ``labels[i]``."""
    from .keys import target_row

    row = target_row(ctx, 0, req, prefix)
    positions = list(range(row.target_from - 1, len(row.full) - 1))
    return list(row.ids), positions, [row.full[t + 1] for t in positions]


class Tail:
    """The model from one block on, over fixed rows: the blocks before it are run once, and each training step runs
    only the rest (GRACE and WISE train at a late layer, whose inputs no training step changes).

    The first pass records what every later block is called with (masks, positions, ...) and the first block's
    input; :meth:`run` calls the blocks with those, replacing only the hidden states, then the final norm."""

    def __init__(self, ctx: Any, rows: Sequence[Sequence[int]], first: int) -> None:
        import torch

        from .arch import module

        self.ctx = ctx
        self.blocks = [module(ctx.backend.model, ctx.layout.block_path(i)) for i in range(first, ctx.layout.n_layers)]
        self.norm = module(ctx.backend.model, ctx.layout.final_norm_path or "")
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        handles = [b.register_forward_pre_hook(self._record, with_kwargs=True) for b in self.blocks]
        try:
            with torch.no_grad():
                self.full, _ = ctx.run(rows)
        finally:
            for h in handles:
                h.remove()
        if len(self.calls) != len(self.blocks):
            raise EditError(f"the model called {len(self.calls)} of its last {len(self.blocks)} blocks once each; "
                            "its blocks cannot be run apart")

    def _record(self, mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.calls.append((args, dict(kwargs)))

    def run(self) -> Any:
        """Final hidden states (after the last norm) with whatever module edits are hooked in now."""
        args, kwargs = self.calls[0]
        hidden = args[0] if args else kwargs["hidden_states"]
        for block, (a, kw) in zip(self.blocks, self.calls):
            if a:
                out = block(hidden, *a[1:], **kw)
            else:
                out = block(**{**kw, "hidden_states": hidden})
            hidden = out[0] if isinstance(out, tuple) else out
        return self.norm(hidden)
