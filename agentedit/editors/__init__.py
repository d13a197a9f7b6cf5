"""Parametric editors for local models: ROME, MEMIT, constrained fine-tuning, AlphaEdit.

>>> ctx = EditContext.create(LocalBackend("hf:smollm2-135m-instruct"))        # doctest: +SKIP
>>> delta = make_editor("rome", ctx).apply([EditRequest.make(
...     "The Eiffel Tower is located in", "Eiffel Tower", "Rome")])            # doctest: +SKIP
>>> make_editor("rome", ctx).revert(delta)                                     # doctest: +SKIP

Every editor computes a :class:`Delta` without touching the model, applies it in one place
(:class:`DeltaStack`), and reverts it bit for bit. Module paths come from :func:`discover`.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .alphaedit import AlphaEdit, AlphaEditConfig
from .arch import ArchitectureError, Layout, discover
from .base import ParametricEditor
from .context import EditContext
from .corpus import SampledCorpus, TextCorpus
from .deltas import Delta, DeltaStack, Factor
from .ft import FineTune, FTConfig
from .memit import MEMIT, MEMITConfig
from .requests import EditRequest
from .rome import ROME, ROMEConfig
from .targets import TargetConfig

EDITORS: dict[str, type[ParametricEditor]] = {"rome": ROME, "memit": MEMIT, "ft": FineTune, "alphaedit": AlphaEdit}


def make_editor(name: str, ctx: EditContext, config: Any = None) -> ParametricEditor:
    """The editor called ``name`` over ``ctx`` (``config``: that editor's dataclass, or None for defaults)."""
    cls = EDITORS.get(name)
    if cls is None:
        raise ConfigError(f"unknown parametric method {name!r}; choose one of {', '.join(EDITORS)}")
    return cls(ctx, config)


__all__ = ["AlphaEdit", "AlphaEditConfig", "ArchitectureError", "Delta", "DeltaStack", "EDITORS", "EditContext",
           "EditRequest", "FTConfig", "Factor", "FineTune", "Layout", "MEMIT", "MEMITConfig", "ParametricEditor", "ROME",
           "ROMEConfig", "SampledCorpus", "TargetConfig", "TextCorpus", "discover", "make_editor"]
