"""Parametric methods for local models: ROME, MEMIT, constrained fine-tuning, AlphaEdit; for lifelong editing
GRACE and WISE, whose edits live beside the weights (:mod:`~agentedit.parametric.adapters`), and RECIPE, whose edits
are retrieved continuous prompts put before the input (:mod:`~agentedit.parametric.recipe`).

>>> ctx = EditContext.create(LocalBackend("hf:smollm2-135m-instruct"))        # doctest: +SKIP
>>> delta = make_method("rome", ctx).apply([EditRequest.make(
...     "The Eiffel Tower is located in", "Eiffel Tower", "Rome")])            # doctest: +SKIP
>>> make_method("rome", ctx).revert(delta)                                     # doctest: +SKIP

Every editor computes a :class:`Delta` without touching the model, applies it in one place
(:class:`DeltaStack`), and reverts it bit for bit. Module paths come from :func:`discover`.

The methods are registered by name in :data:`METHODS`; a method's module is imported when the
method (or its class or config, e.g. ``agentedit.parametric.ROME``) is first asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..registry import Registry
from .arch import ArchitectureError, Layout, discover
from .base import ParametricMethod
from .context import EditContext
from .corpus import SampledCorpus, TextCorpus
from .deltas import Delta, DeltaStack, Factor
from .requests import EditRequest
from .targets import TargetConfig

if TYPE_CHECKING:
    from .alphaedit import AlphaEdit, AlphaEditConfig
    from .ft import FineTune, FTConfig
    from .grace import GRACE, GRACEConfig
    from .memit import MEMIT, MEMITConfig
    from .recipe import RECIPE, RECIPEConfig
    from .rome import ROME, ROMEConfig
    from .wise import WISE, WISEConfig

METHODS: Registry[type[ParametricMethod]] = Registry("parametric method")
METHODS.add("rome", "agentedit.parametric.rome:ROME")
METHODS.add("memit", "agentedit.parametric.memit:MEMIT")
METHODS.add("ft", "agentedit.parametric.ft:FineTune")
METHODS.add("alphaedit", "agentedit.parametric.alphaedit:AlphaEdit")
METHODS.add("grace", "agentedit.parametric.grace:GRACE")  # lifelong: edits beside the weights (adapters.py)
METHODS.add("wise", "agentedit.parametric.wise:WISE")
METHODS.add("recipe", "agentedit.parametric.recipe:RECIPE")  # retrieved continuous prompts before the input

# The method classes and their configs, re-exported here but imported only on first access (PEP 562).
_LAZY = {"ROME": "rome", "ROMEConfig": "rome", "MEMIT": "memit", "MEMITConfig": "memit", "FineTune": "ft",
         "FTConfig": "ft", "AlphaEdit": "alphaedit", "AlphaEditConfig": "alphaedit", "GRACE": "grace",
         "GRACEConfig": "grace", "WISE": "wise", "WISEConfig": "wise", "RECIPE": "recipe",
         "RECIPEConfig": "recipe"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def make_method(name: str, ctx: EditContext, config: Any = None) -> ParametricMethod:
    """The editor called ``name`` over ``ctx`` (``config``: that editor's dataclass, or None for defaults)."""
    return METHODS.get(name)(ctx, config)


__all__ = ["AlphaEdit", "AlphaEditConfig", "ArchitectureError", "Delta", "DeltaStack", "METHODS", "EditContext",
           "EditRequest", "FTConfig", "Factor", "FineTune", "GRACE", "GRACEConfig", "Layout", "MEMIT", "MEMITConfig", "ParametricMethod", "RECIPE",
           "RECIPEConfig", "ROME",
           "ROMEConfig", "SampledCorpus", "TargetConfig", "TextCorpus", "WISE", "WISEConfig", "discover", "make_method"]
