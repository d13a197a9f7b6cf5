"""The proxy processes under test, their admin keys, and the stores they serve (built once, reused)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from agentedit.server.process import ChildServer, proxy_process

log = logging.getLogger("evals.proxy_bench")


# -- processes -----------------------------------------------------------------------------------------
def start_proxy(work: Path, store: str, upstream: str, log_file: Path, scope: str = "similarity",
                backend: str | None = None, *, workers: int = 1, chroma_url: str | None = None,
                client: str | None = None) -> ChildServer:
    """``agentedit serve`` over ``store``; ``backend`` picks the embedder runtime (AGENTEDIT_EMBEDDER_BACKEND),
    ``client`` the upstream client (AGENTEDIT_UPSTREAM_CLIENT); ``workers`` > 1 serves with that many processes over
    the Chroma server at ``chroma_url``."""
    env = {**({"AGENTEDIT_EMBEDDER_BACKEND": backend} if backend else {}),
           **({"AGENTEDIT_UPSTREAM_CLIENT": client} if client else {})} or None
    extra = ("--retries", "0", "--max-batch-mb", "32", *(("--workers", str(workers)) if workers > 1 else ()))
    return proxy_process(store=store, store_dir=work / "stores", model="openai/standin", api_base=upstream, scope=scope,
                         chroma_url=chroma_url, extra=extra, log_path=log_file, env=env).start(timeout=1200)


def _family(pid: int | None) -> list[int]:
    """``pid`` and its descendants (a ``serve --workers`` supervisor and its workers)."""
    if pid is None:
        return []
    import psutil

    try:
        return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return [pid]


def cpu_seconds(pid: int | None, *others: int | None) -> float | None:
    """User + system CPU time that process ``pid``, its descendants and ``others`` have used so far (threads
    included), None when it cannot be read."""
    total = 0.0
    try:
        for one in [*_family(pid), *(o for o in others if o is not None)]:
            fields = Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return total


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of process ``pid`` and its descendants in MiB (VmRSS), None when it cannot be read."""
    total = 0.0
    try:
        for one in _family(pid):
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return round(total, 1) if total else None


def admin_key(work: Path, store: str) -> str:
    from agentedit.server import KeyStore, ServerConfig

    keys = KeyStore(ServerConfig(store=store, store_dir=str(work / "stores")).resolved_keys_path())
    try:
        return keys.create(role="admin", namespaces=["*"], name="bench")[0]
    finally:
        keys.close()


# -- stores --------------------------------------------------------------------------------------------
def counterfact(data: Path) -> list[dict[str, Any]]:
    return json.loads((data / "counterfact" / "counterfact-train.json").read_text("utf-8"))


def synthetic_edits(n: int) -> list[dict[str, Any]]:
    """Distinct filler facts beyond CounterFact (people, jobs, cities)."""
    first = ["Ada", "Bela", "Cyrus", "Dara", "Emil", "Fenna", "Gus", "Hana", "Ivo", "Jana", "Kai", "Lia", "Milo", "Nora",
             "Otto", "Pia", "Quin", "Rosa", "Sami", "Tove", "Ugo", "Vera", "Wim", "Xena", "Yuri", "Zoe", "Arlo", "Bea",
             "Cleo", "Dion", "Elsa", "Finn", "Gaia", "Hugo", "Ines", "Joel", "Kira", "Lars", "Maya", "Nils"]
    last = ["Abbott", "Berg", "Castro", "Dahl", "Eng", "Falk", "Gray", "Holm", "Ito", "Jung", "Kerr", "Lund", "Moss",
            "Nash", "Ortiz", "Park", "Quist", "Roth", "Sato", "Toft", "Uhl", "Voss", "Wong", "Yates", "Zorn", "Adler",
            "Brandt", "Costa", "Diaz", "Eklund", "Ford", "Gil", "Hale", "Ibsen", "Jovic", "Kahn", "Lowe", "Mertz"]
    jobs = ["pilot", "baker", "chemist", "judge", "nurse", "sculptor", "editor", "farmer", "geologist", "violinist",
            "architect", "plumber", "surgeon", "linguist", "botanist", "carpenter", "diplomat", "economist", "jeweller",
            "astronomer", "librarian", "mechanic", "pharmacist", "translator", "zoologist", "curator", "florist",
            "historian", "locksmith", "navigator", "potter", "referee", "tailor", "welder", "cartographer"]
    cities = ["Oslo", "Quito", "Lagos", "Hanoi", "Perth", "Graz", "Cusco", "Tartu", "Izmir", "Leeds", "Porto",
              "Turku", "Malmo", "Split", "Kyoto", "Davao", "Tromso", "Sucre", "Brno", "Cork"]
    out = []
    for i, (c, f, l, j) in enumerate(itertools.product(cities, first, last, jobs)):
        if i >= n:
            break
        out.append({"statement": f"{f} {l} works as a {j} in {c}.", "subject": f"{f} {l}"})
    if len(out) < n:
        raise SystemExit(f"only {len(out)} synthetic facts available; lower --sizes")
    return out


def bench_items(size: int, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The edits of a ``size``-edit bench store, in insertion order: CounterFact cases first, then synthetic facts."""
    n_cf = min(size, len(cases))
    items: list[dict[str, Any]] = [{"prompt": c["prompt"], "subject": c["subject"], "target_new": c["target_new"]}
                                   for c in cases[:n_cf]]
    return items + synthetic_edits(size - n_cf)


def store_info(work: Path, name: str) -> dict[str, Any]:
    """The build record of a finished bench store; for an unfinished one (``--as-is``), its current counts."""
    built = work / "stores" / name / "BUILT"
    if built.exists():
        return json.loads(built.read_text("utf-8"))
    from agentedit.memory import EditMemory

    with EditMemory(name, root=work / "stores") as mem:
        return {"edits": mem.ledger.count(status=None), "active": mem.count(), "unfinished": True}


def build_store(work: Path, size: int, cases: list[dict[str, Any]], batch: int = 5000, as_is: bool = False) -> str:
    """A store of ``size`` written edits (:func:`bench_items`; CounterFact repeats a few facts, so some are superseded),
    built once and resumable: batches are all-or-nothing, so the ledger's row count (any status) is how many items
    are in; a rerun continues there."""
    from agentedit.memory import EditMemory

    name = f"bench-{size}"
    done = work / "stores" / name / "BUILT"
    if done.exists() or (as_is and done.parent.exists()):
        return name
    items = bench_items(size, cases)
    started = time.perf_counter()
    with EditMemory(name, root=work / "stores") as mem:
        have = mem.ledger.count(status=None)
        if have:
            log.info("store %s: resuming after %d edits", name, have)
        for i in range(have, len(items), batch):
            mem.add_many(items[i:i + batch], actor="bench")
            took = time.perf_counter() - started
            log.info("store %s: %d/%d edits (%.0f s, %.0f edits/s this run)", name, min(i + batch, len(items)),
                     len(items), took, (min(i + batch, len(items)) - have) / took)
        if mem.ledger.count(status=None) != size:
            raise SystemExit(f"store {name} holds {mem.ledger.count(status=None)} edits, expected {size}: delete {done.parent}")
        active = mem.count()
        added = size - have
    took = time.perf_counter() - started
    done.write_text(json.dumps({"edits": size, "active": active, "added_this_run": added, "build_s": round(took, 1),
                                "edits_per_s": round(added / took, 1) if took else None,
                                "resumed_at": have, "embedder_backend": mem.embedder.backend}))
    return name
