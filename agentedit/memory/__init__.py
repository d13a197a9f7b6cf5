"""The edit memory: a vector index (Chroma) over a SQLite ledger with an append-only audit log."""

from ..types import Candidate  # re-exported: Candidate lived here before it moved beside EditRecord
from .embed import Embedder, shared_embedder
from .store import DEFAULT_NAMESPACE, EditMemory, store_root

__all__ = ["Candidate", "DEFAULT_NAMESPACE", "EditMemory", "Embedder", "shared_embedder", "store_root"]
