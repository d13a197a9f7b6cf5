"""Edit files in and out of a store: reading JSONL/JSON/CSV into records, writing records as JSONL.

:meth:`EditMemory.import_file <agentedit.memory.store.EditMemory.import_file>` and
:meth:`~agentedit.memory.store.EditMemory.export_file` delegate here; storing and listing stay in the store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from ..errors import EditError
from ..records import build_records, read_edit_file
from ..types import EditRecord


def read_records(path: str | os.PathLike[str], *, namespace: str, actor: str) -> tuple[list[EditRecord], list[str]]:
    """Validated records from an edit file and a label per record naming its line; errors name the file and line."""
    items, labels = read_edit_file(path)
    try:
        recs = build_records(items, namespace=namespace, actor=actor, labels=labels)
    except EditError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    return recs, labels


def write_records(path: str | os.PathLike[str], records: Sequence[EditRecord]) -> int:
    """Write ``records`` as JSONL (one full record per line), atomically; returns how many were written."""
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return len(records)
