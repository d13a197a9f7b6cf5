"""One lazy registry pattern for every pluggable part: scope checkers, parametric methods, backends,
evaluation methods and datasets.

A registry maps a name to a factory given as ``"module:attribute"`` (imported on first use, so a
heavy optional dependency costs nothing until that name is asked for) or as the object itself.
Unknown names fail with the list of known ones::

    CHECKERS = Registry("scope checker")
    CHECKERS.add("relation", "agentedit.scope.relation:factory")
    CHECKERS.get("relation")          # imports agentedit.scope.relation now
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> objects, resolved from ``"module:attribute"`` strings on first use."""

    def __init__(self, kind: str, hint: str = "") -> None:
        self.kind = kind
        self.hint = hint
        self._entries: dict[str, str | T] = {}
        self._loaded: dict[str, T] = {}

    def add(self, name: str, target: str | T, *, replace: bool = False) -> None:
        """Register ``target`` under ``name``; a second registration of one name is refused unless ``replace``."""
        if not name or not isinstance(name, str):
            raise ConfigError(f"a {self.kind} needs a non-empty name")
        if name in self._entries and not replace:
            raise ConfigError(f"{self.kind} {name!r} is already registered; pass replace=True to override it")
        self._entries[name] = target
        self._loaded.pop(name, None)

    def register(self, name: str, *, replace: bool = False) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def wrap(obj: T) -> T:
            self.add(name, obj, replace=replace)
            return obj

        return wrap

    def get(self, name: str) -> T:
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._entries:
            extra = f"; {self.hint}" if self.hint else ""
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self._entries)}{extra}")
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            obj: Any = importlib.import_module(module)
            for part in attr.split(".") if attr else ():
                obj = getattr(obj, part)
            target = obj
        self._loaded[name] = target  # type: ignore[assignment]
        return target  # type: ignore[return-value]

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"
