"""The ``agentedit`` command line: the Editor's verbs, for people and scripts (``--json``)."""

from .common import console, err_console
from .main import app, main

__all__ = ["app", "console", "err_console", "main"]
