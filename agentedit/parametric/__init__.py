"""Parametric methods for local models: ROME, MEMIT, constrained fine-tuning, AlphaEdit.

>>> ctx = EditContext.create(LocalBackend("hf:smollm2-135m-instruct"))        # doctest: +SKIP
>>> delta = make_method("rome", ctx).apply([EditRequest.make(
...     "The Eiffel Tower is located in", "Eiffel Tower", "Rome")])            # doctest: +SKIP
>>> make_method("rome", ctx).revert(delta)                                     # doctest: +SKIP

Every editor computes a :class:`Delta` without touching the model, applies it in one place
(:class:`DeltaStack`), and reverts it bit for bit. Module paths come from :func:`discover`.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .alphaedit import AlphaEdit, AlphaEditConfig
from .arch import ArchitectureError, Layout, discover
from .base import ParametricMethod
from .context import EditContext
from .corpus import SampledCorpus, TextCorpus
from .deltas import Delta, DeltaStack, Factor
from .ft import FineTune, FTConfig
from .memit import MEMIT, MEMITConfig
from .requests import EditRequest
from .rome import ROME, ROMEConfig
from .targets import TargetConfig

METHODS: dict[str, type[ParametricMethod]] = {"rome": ROME, "memit": MEMIT, "ft": FineTune, "alphaedit": AlphaEdit}


def make_method(name: str, ctx: EditContext, config: Any = None) -> ParametricMethod:
    """The editor called ``name`` over ``ctx`` (``config``: that editor's dataclass, or None for defaults)."""
    cls = METHODS.get(name)
    if cls is None:
        raise ConfigError(f"unknown parametric method {name!r}; choose one of {', '.join(METHODS)}")
    return cls(ctx, config)


__all__ = ["AlphaEdit", "AlphaEditConfig", "ArchitectureError", "Delta", "DeltaStack", "METHODS", "EditContext",
           "EditRequest", "FTConfig", "Factor", "FineTune", "Layout", "MEMIT", "MEMITConfig", "ParametricMethod", "ROME",
           "ROMEConfig", "SampledCorpus", "TargetConfig", "TextCorpus", "discover", "make_method"]
