"""The benchmark registry (see ../shared/datasets/README.md).

Each dataset is a file and the parser that turns it into :class:`Case` objects: for the shared files, a declaration
of :mod:`~agentedit.evaluation.schema` (``schemas/*.yaml``); ``load_dataset(name)`` picks them by name from the
:data:`DATASETS` registry. The data
directory comes from the caller, else ``$AGENTEDIT_DATA``, else
``../shared/datasets`` next to the current directory. A missing or malformed file is an :class:`EvalDataError` naming the
file and the record.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, NamedTuple

from ..settings import env
from ..registry import Registry
from .cases import Case
from .schema import EvalDataError, builtin_declarations, load_declaration


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    root = Path(path or env("AGENTEDIT_DATA") or Path.cwd().parent / "shared" / "datasets")
    if not root.is_dir():
        raise EvalDataError(f"data directory {root} not found; pass --data-dir or set AGENTEDIT_DATA to the folder of the benchmark files")
    return root


class Dataset(NamedTuple):
    """A benchmark: its file under the data directory and the loader that turns the file into cases."""

    path: str
    parse: Callable[[Path], list[Case]]

    def load(self, root: str | os.PathLike[str] | None = None) -> list[Case]:
        path = Path(self.path)  # an absolute path is a file of the source tree, not of the data folder
        return self.parse(path if path.is_absolute() else data_dir(root) / path)


# More benchmarks plug in with DATASETS.add(name, Dataset(path, parse)), or "module:attribute" naming a Dataset; the
# shipped ones are the declarations in schemas/*.yaml that name a file of the shared data folder (role eval).
DATASETS: Registry[Dataset] = Registry("dataset", "or register one with DATASETS.add(name, Dataset(path, parse))")
for _decl in builtin_declarations():
    if _decl.file and _decl.role == "eval":
        DATASETS.add(_decl.name, Dataset(_decl.file, _decl.parse))
DATASETS.add("userstyle", "agentedit.evaluation.userstyle:DATASET")


def register_file(path: str | os.PathLike[str], schema: str | os.PathLike[str], name: str | None = None) -> str:
    """Register the benchmark file ``path`` read by declaration ``schema`` (a shipped name or a YAML file) as a dataset
    (by default named after the file) and return its name: ``agentedit eval --dataset-file FILE --schema NAME``."""
    decl = load_declaration(schema)
    file = Path(path).resolve()
    if not file.is_file():
        raise EvalDataError(f"dataset file {path} not found")
    name = name or file.stem
    if name in DATASETS:
        known = DATASETS.get(name)
        if Path(known.path) != file:
            raise EvalDataError(f"dataset name {name!r} is taken by {known.path}; rename the file or pass another name")
        return name
    DATASETS.add(name, Dataset(str(file), decl.parse))
    return name


def load_dataset(name: str, root: str | os.PathLike[str] | None = None, *, limit: int | None = None) -> list[Case]:
    """Load benchmark ``name`` (see :data:`DATASETS`) from the data directory."""
    if name not in DATASETS:
        raise EvalDataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    cases = DATASETS.get(name).load(root)
    return cases[:limit] if limit is not None else cases
