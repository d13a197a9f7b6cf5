"""Run a Python module as a child that exits when the process that started it is gone.

``python -m agentedit.child_guard PARENT_PID MODULE ARGS...`` runs ``MODULE`` as ``__main__`` (like ``python -m
MODULE ARGS...``) with a daemon thread that ends the process once its parent has died, even by SIGKILL (then
no ``atexit`` handler of the parent runs). The embedded llama.cpp server is started this way: an orphaned
server keeps its threads spinning and takes the cores of a small machine from everything else.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time

POLL_S = 1.0


def _watch(parent: int) -> None:
    while True:
        time.sleep(POLL_S)
        if os.getppid() != parent:  # re-parented: the starter is gone
            os._exit(0)


def main(argv: list[str]) -> None:
    if len(argv) < 2 or not argv[0].isdigit():
        sys.exit("usage: python -m agentedit.child_guard PARENT_PID MODULE [ARGS...]")
    parent, module = int(argv[0]), argv[1]
    if os.getppid() != parent:
        sys.exit(0)
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="child-guard").start()
    sys.argv = [module, *argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
