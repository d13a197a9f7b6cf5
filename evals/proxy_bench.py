"""What the edit proxy (``agentedit serve``) costs, how much load it takes, how fast it imports, and whether a
crash loses edits; each figure per embedder runtime (``--backends``: ONNX Runtime, the default, against torch).

Everything runs on 127.0.0.1. The upstream is a stand-in written here: a minimal OpenAI-compatible
server (its own process) that answers at once, so the figures are about agentedit's code, not a model.

0. The embedder alone, in this process: one question's p50, batch texts/s, and the backends' smallest cosine.
1. Added latency: the same requests sent straight to the stand-in and through the proxy, one at a
   time; p50/p95 of plain requests and time to the first content token of streamed ones, with
   ``--sizes`` edits in memory (default 100k and 1M; half the questions are paraphrases of stored
   edits, half are unrelated; every measured question is new to the proxy, and ``plain_repeat`` asks
   the plain ones again). Scope checker: the default (relation-clauses). The proxy's own retrieve and
   scope timings and its resident memory are recorded too.
2. Load: ``--clients`` concurrent clients for ``--duration`` seconds per backend with questions that
   repeat (the query LRU answers), and once with a new question every request: requests/s, errors, latency.
3. Import: one ``--import-batch`` batch into a fresh embedded store (the other backends: a smaller batch).
4. Crash safety (skipped unless ``--skip`` leaves it in): a 10k-edit batch import is killed with SIGKILL while a
   second client adds single edits; after a restart the batch must be all there or absent, every acknowledged
   single edit present, and the index must agree with the ledger.

    python evals/proxy_bench.py --fill 1000000                    # build (or resume) the 1M store once; slow
    python evals/proxy_bench.py --run-name proxy-bench-session4
    python evals/proxy_bench.py --sizes 2000 --duration 10 --import-batch 2000 --run-name proxy-smoke

Writes ``evals/results/<run-name>/`` (results.json, summary.md, PNG plots). Stores are built once
under ``--work-dir`` and reused.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentedit.evaluation.loaders import data_dir  # noqa: E402
from agentedit.evaluation.report import machine  # noqa: E402
from agentedit.server.process import ChildServer, free_port  # noqa: E402
from evals.proxy.crash import measure_crash  # noqa: E402
from evals.proxy.measure import measure_latency, measure_load, questions  # noqa: E402
from evals.proxy.report import write_report  # noqa: E402
from evals.proxy.standin import run_standin  # noqa: E402
from evals.proxy.speed import measure_embedder, measure_import, measure_prepare  # noqa: E402
from evals.proxy.stores import build_store, counterfact, store_info  # noqa: E402

log = logging.getLogger("evals.proxy_bench")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100000, 1000000], help="edits in memory for the latency runs")
    ap.add_argument("--scopes", nargs="+", default=["relation-clauses"],
                    help="scope checkers to time (the first one also serves the load and crash runs)")
    ap.add_argument("--backends", nargs="+", default=["onnx", "torch"], choices=["onnx", "torch"],
                    help="embedder runtimes to compare (the first is the new default; load runs use each)")
    ap.add_argument("--latency-backends-max-size", type=int, default=10**9,
                    help="above this store size only the first backend's latency is measured")
    ap.add_argument("--load-size", type=int, default=None, help="edits in memory for the load runs (default: largest)")
    ap.add_argument("--import-batch", type=int, default=100000, help="edits in the import-rate batch (first backend)")
    ap.add_argument("--import-batch-others", type=int, default=10000, help="edits in the other backends' import batch")
    ap.add_argument("--requests", type=int, default=300, help="requests per latency measurement")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of the load run")
    ap.add_argument("--upstream-clients", nargs="+", default=["direct"], choices=["direct", "litellm"],
                    help="upstream clients of the latency runs (AGENTEDIT_UPSTREAM_CLIENT), measured one after the other")
    ap.add_argument("--load-client", default="httpx", choices=["httpx", "raw"],
                    help="the load generator's HTTP client (raw: a minimal keep-alive client, leaving the proxy more CPU)")
    ap.add_argument("--load-workers", type=int, nargs="+", default=[1],
                    help="serve --workers counts for the load runs (above 1: the index served by `chroma run`)")
    ap.add_argument("--crash-batch", type=int, default=10000)
    ap.add_argument("--crash-trials", type=int, default=4)
    ap.add_argument("--skip", nargs="*", default=["crash"], choices=["embedder", "import", "prepare", "latency", "load", "crash"],
                    help="parts not to run; their figures are kept from an earlier results.json of the same run name")
    ap.add_argument("--work-dir", default="/tmp/agentedit-proxy-bench", help="stores and logs (reused between runs)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out-dir", default=str(ROOT / "evals" / "results"), help="where run folders go")
    ap.add_argument("--run-name", default="proxy-bench")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--as-is", type=int, nargs="*", default=[], metavar="SIZE",
                    help="use these sizes' stores as far as --fill got (the report gives their real counts)")
    ap.add_argument("--fill", type=int, metavar="N", help="only build (or resume building) the N-edit store, then exit")
    ap.add_argument("--stand-in-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.stand_in_upstream:
        run_standin(args.stand_in_upstream)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    os.environ.update(HF_HUB_OFFLINE="1", LITELLM_LOCAL_MODEL_COST_MAP="True")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    cases = counterfact(data_dir(args.data_dir))
    if args.fill:
        build_store(work, args.fill, cases)
        print((work / "stores" / f"bench-{args.fill}" / "BUILT").read_text("utf-8"))
        return
    out = Path(args.out_dir) / args.run_name
    t0 = time.time()
    report: dict[str, Any] = {
        "suite": "proxy", "run_name": args.run_name, "model": "stand-in upstream (answers at once)",
        "upstream": "minimal OpenAI-compatible server on 127.0.0.1 (own process)",
        "backend": "agentedit serve (uvicorn, 1 process, API keys on, embedded Chroma)", "load_and_crash_scope": args.scopes[0],
        "embedder": f"all-MiniLM-L6-v2 (CPU; runtimes {', '.join(args.backends)})", "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": 0, "config": vars(args), "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    earlier = json.loads((out / "results.json").read_text("utf-8")) if (out / "results.json").exists() else {}
    keys = {"embedder": ["embedder_alone"], "latency": ["latency", "stores"]}  # a part's keys in results.json
    kept = [part for part in args.skip if any(k in earlier for k in keys.get(part, [part]))]
    for part in kept:
        report.update({k: earlier[k] for k in keys.get(part, [part]) if k in earlier})
    if kept:  # where the kept figures were measured (an earlier run may itself have kept them)
        origin = earlier.get("kept_from_earlier_run") or {}
        first = origin if set(kept) <= set(origin.get("parts", [])) else earlier
        report["kept_from_earlier_run"] = {"parts": kept, "started": first.get("started"),
                                           "load_avg_1m_at_start": first.get("load_avg_1m_at_start")}

    port = free_port()
    standin = ChildServer([sys.executable, __file__, "--stand-in-upstream", str(port)], base_url=f"http://127.0.0.1:{port}/v1",
                          health_path="/models").start(timeout=60)
    upstream = standin.base_url
    try:
        sets = {name: questions(cases, args.requests, args.seed, part) for part, name in enumerate(["plain", "stream_ttft", "warm"])}
        if "embedder" not in args.skip:
            report["embedder_alone"] = measure_embedder(cases, args.backends)
            write_report(out, report)
        if "latency" not in args.skip:
            report["latency"] = {}
            for scope in args.scopes:
                for size in args.sizes:
                    store = build_store(work, size, cases, as_is=size in args.as_is)
                    report.setdefault("stores", {})[str(size)] = store_info(work, store)
                    for backend in args.backends if size <= args.latency_backends_max_size else args.backends[:1]:
                        if "prepare" not in args.skip:
                            report.setdefault("prepare", {}).setdefault(f"{scope}/{backend}", {})[str(size)] = \
                                measure_prepare(work, store, sets, scope, backend)
                        for client in args.upstream_clients:  # the direct client first; others side by side
                            r = measure_latency(work, store, upstream, sets, scope, backend, client)
                            key = f"{scope}/{backend}" + ("" if client == "direct" else f"/{client}")
                            report["latency"].setdefault(key, {})[str(size)] = {**r, "load_avg_1m": round(os.getloadavg()[0], 2)}
                            log.info("latency, %s scope, %s backend, %s client, %d edits: %s", scope, backend, client, size, r)
                            write_report(out, report)
        if "load" not in args.skip:
            size = args.load_size or max(args.sizes)
            store = build_store(work, size, cases, as_is=size in args.as_is)
            runs = [(b, False, 1) for b in args.backends] + [(args.backends[0], True, 1)]
            runs += [(args.backends[0], unique, w) for w in args.load_workers if w > 1 for unique in (False, True)]
            # runs with the other load client stay (the two are compared side by side)
            report["load"] = [r for r in earlier.get("load", []) if r.get("load_client", "httpx") != args.load_client]
            for backend, unique, workers in runs:
                load = round(os.getloadavg()[0], 2)
                r = measure_load(work, store, upstream, sets["plain"], args.clients, args.duration, args.scopes[0], backend,
                                 unique, workers, args.load_client)
                report["load"].append({**r, "n_edits_in_memory": size, "load_avg_1m_at_start": load})
                log.info("load: %s", {k: v for k, v in r.items() if k != "per_second"})
                write_report(out, report)
        if "import" not in args.skip:  # last (long); a missing bench store of its size is kept
            report["import"] = [measure_import(work, args.import_batch if i == 0 else args.import_batch_others, cases, b,
                                               keep=i == 0) for i, b in enumerate(args.backends)]
            write_report(out, report)
        if "crash" not in args.skip:
            report["crash"] = measure_crash(work, upstream, args.crash_batch, args.crash_trials, args.seed)
    finally:
        standin.stop()
        report["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
        report["wall_s"] = round(time.time() - t0, 1)
        write_report(out, report)
    print(f"wrote {out}/results.json and summary.md")


if __name__ == "__main__":
    main()
