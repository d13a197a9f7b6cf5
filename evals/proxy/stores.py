"""The proxy processes under test, their admin keys, and the stores they serve (built once, reused)."""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from agentedit.server.process import ChildServer, proxy_process

log = logging.getLogger("evals.proxy_bench")


# -- processes -----------------------------------------------------------------------------------------
def start_proxy(work: Path, store: str, upstream: str, log_file: Path, scope: str = "similarity") -> ChildServer:
    return proxy_process(store=store, store_dir=work / "stores", model="openai/standin", api_base=upstream, scope=scope,
                         extra=("--retries", "0", "--max-batch-mb", "32"), log_path=log_file).start(timeout=600)


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


def build_store(work: Path, size: int, cases: list[dict[str, Any]]) -> str:
    """A store holding ``size`` edits: CounterFact cases first, then synthetic facts. Built once."""
    from agentedit.memory import EditMemory

    name = f"bench-{size}"
    done = work / "stores" / name / "BUILT"
    if done.exists():
        return name
    shutil.rmtree(work / "stores" / name, ignore_errors=True)
    n_cf = min(size, len(cases))
    items: list[dict[str, Any]] = [{"prompt": c["prompt"], "subject": c["subject"], "target_new": c["target_new"]}
                                   for c in cases[:n_cf]]
    items += synthetic_edits(size - n_cf)
    started = time.perf_counter()
    with EditMemory(name, root=work / "stores") as mem:
        for i in range(0, len(items), 5000):
            mem.add_many(items[i:i + 5000], actor="bench")
            log.info("store %s: %d/%d edits (%.0f s)", name, min(i + 5000, len(items)), len(items), time.perf_counter() - started)
    done.write_text(json.dumps({"edits": size, "build_s": round(time.perf_counter() - started, 1)}))
    return name
