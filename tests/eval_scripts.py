"""Load a script under ``evals/`` as a module, so a test calls its ``main(argv)`` in process."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

EVALS = Path(__file__).resolve().parents[1] / "evals"


def load_eval_script(name: str) -> ModuleType:
    """``evals/<name>.py`` as a module (executed once per call)."""
    spec = importlib.util.spec_from_file_location(name, EVALS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
