"""Which vector index for a PostgreSQL store: Chroma server or pgvector (and embedded Chroma as the baseline).

The same vectors go into each index through the store's own ``VectorIndex`` implementations, then the same
queries: fill rate, query latency p50/p95 (k=4, one namespace) and recall@4 against an exact search. Each index
runs on this machine: embedded Chroma in process, a ``chroma run`` server, PostgreSQL 16 with pgvector (HNSW,
cosine) from the pgserver wheel. Queries are held-out vectors of the same kind.

    python evals/index_bench.py --name index-choice --sizes 20000 --vectors embed
    python evals/index_bench.py --name index-choice-100k --sizes 100000 --vectors random
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from agentedit.db.postgres_schema import open_store_database  # noqa: E402
from agentedit.memory.embed import shared_embedder  # noqa: E402
from agentedit.memory.index import ChromaIndex  # noqa: E402
from agentedit.memory.pgvector_index import PgVectorIndex  # noqa: E402
from agentedit.server.pg_process import LocalPostgres  # noqa: E402
from agentedit.server.process import chroma_process  # noqa: E402
from evals import _report  # noqa: E402

BATCH = 2000
SUBJECTS = ("harbour", "relay", "depot", "beacon", "station", "archive", "orchard", "foundry")


def vectors(n: int, kind: str, seed: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    texts = [f"The {SUBJECTS[i % 8]} {i} is run by crew {rng.integers(1000)} in district {rng.integers(300)}." for i in range(n)]
    if kind == "embed":
        return shared_embedder().embed(texts), texts
    v = rng.standard_normal((n, 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True), texts


def measure(index: Any, vecs: np.ndarray, texts: list[str], queries: np.ndarray, truth: list[set[str]],
            in_tx: Any) -> dict[str, Any]:
    ids = [f"e{i}" for i in range(len(vecs))]
    start = time.perf_counter()
    for s in range(0, len(vecs), BATCH):
        with in_tx():
            index.upsert("default", ids[s:s + BATCH], vecs[s:s + BATCH], texts[s:s + BATCH],
                         [{"subject": ""}] * len(ids[s:s + BATCH]))
    fill = time.perf_counter() - start
    index.query("default", queries[0], 4)  # warm
    lat, hits = [], 0
    for q, want in zip(queries, truth):
        t0 = time.perf_counter()
        got = index.query("default", q, 4)
        lat.append(1000 * (time.perf_counter() - t0))
        hits += len({i for i, _ in got} & want)
    lat.sort()
    return {"fill_per_s": round(len(vecs) / fill, 1), "query_p50_ms": round(lat[len(lat) // 2], 3),
            "query_p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 3), "recall_at_4": round(hits / (4 * len(truth)), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="index-choice")
    ap.add_argument("--sizes", default="20000")
    ap.add_argument("--vectors", choices=("embed", "random"), default="embed")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    work = Path(f"/tmp/agentedit-index-bench-{int(time.time())}")
    work.mkdir(parents=True)
    result: dict[str, Any] = {"args": vars(args), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "machine": "2 cores x86_64, CPU only", "runs": {}}
    with LocalPostgres(pgvector=True) as pg, chroma_process(work / "chroma-server", log_path=work / "chroma.log") as server:
        for n in (int(x) for x in args.sizes.split(",")):
            vecs, texts = vectors(n + args.queries, args.vectors, args.seed)
            data, queries = vecs[:n], vecs[n:]
            top = np.argsort(-(queries @ data.T), axis=1)[:, :4]
            truth = [{f"e{j}" for j in row} for row in top]
            db = open_store_database(pg.url, f"bench{n}")
            indexes = {"chroma (embedded)": (ChromaIndex(work / f"chroma-{n}", f"b{n}"), None),
                       "chroma server": (ChromaIndex(work / "unused", f"b{n}", url=server.base_url), None),
                       "pgvector (HNSW)": (PgVectorIndex(db, data.shape[1]), db.transaction)}
            for label, (index, tx) in indexes.items():
                from contextlib import nullcontext

                result["runs"].setdefault(str(n), {})[label] = measure(index, data, texts[:n], queries, truth,
                                                                         tx or nullcontext)
                print(n, label, result["runs"][str(n)][label], flush=True)
                index.close()
            db.close()
    lines = [f"# Vector index choice: {args.name}", "", f"Machine: {result['machine']}. Started {result['started']}. "
             f"Vectors: {args.vectors} ({'all-MiniLM-L6-v2 embeddings of generated statements' if args.vectors == 'embed' else 'random unit vectors, 384-d'}); "
             f"{args.queries} held-out queries, k=4, one namespace; recall against exact cosine search.", "",
             "| edits | index | fill /s | query p50 ms | query p95 ms | recall@4 |", "|---|---|---|---|---|---|"]
    for n, runs in result["runs"].items():
        lines += [f"| {n} | {k} | {v['fill_per_s']} | {v['query_p50_ms']} | {v['query_p95_ms']} | {v['recall_at_4']} |"
                  for k, v in runs.items()]
    bars = {f"{n} {k}": v["query_p50_ms"] for n, runs in result["runs"].items() for k, v in runs.items()}
    _report.write(args.name, result, lines, bars, title="Query p50 by index", ylabel="ms")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
