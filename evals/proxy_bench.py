"""What the edit proxy (``agentedit serve``) costs, how much load it takes, and whether a crash loses edits.

Everything runs on 127.0.0.1. The upstream is a stand-in written here: a minimal OpenAI-compatible
server (its own process) that answers at once, so the figures are about agentedit's code, not a model.

1. Added latency: the same requests sent straight to the stand-in and through the proxy, one at a
   time; p50/p95 of plain requests and time to the first content token of streamed ones, with
   ``--sizes`` edits in memory (default 1k and 100k; half the questions are paraphrases of stored
   edits, half are unrelated). Scope checker: the default (similarity).
2. Load: ``--clients`` concurrent clients for ``--duration`` seconds against the largest store:
   requests/s, errors, latency.
3. Crash safety: a 10k-edit batch import is killed with SIGKILL (during embedding, during the index
   write, at a random moment) while a second client keeps adding single edits; after a restart the
   batch must be all there or absent, every acknowledged single edit present, and the index must
   agree with the ledger.

    python evals/proxy_bench.py                                   # everything, default sizes (slow: builds a 100k store)
    python evals/proxy_bench.py --sizes 1000 --duration 10 --crash-batch 2000 --run-name proxy-smoke

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
from evals.proxy.stores import build_store, counterfact  # noqa: E402

log = logging.getLogger("evals.proxy_bench")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 100000], help="edits in memory for the latency runs")
    ap.add_argument("--scopes", nargs="+", default=["similarity", "relation"],
                    help="scope checkers to time (the first one also serves the load and crash runs)")
    ap.add_argument("--requests", type=int, default=300, help="requests per latency measurement")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of the load run")
    ap.add_argument("--crash-batch", type=int, default=10000)
    ap.add_argument("--crash-trials", type=int, default=4)
    ap.add_argument("--skip", nargs="*", default=[], choices=["latency", "load", "crash"],
                    help="parts not to run; their figures are kept from an earlier results.json of the same run name")
    ap.add_argument("--work-dir", default="/tmp/agentedit-proxy-bench", help="stores and logs (reused between runs)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out-dir", default=str(ROOT / "evals" / "results"), help="where run folders go")
    ap.add_argument("--run-name", default="proxy-bench")
    ap.add_argument("--seed", type=int, default=0)
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
    out = Path(args.out_dir) / args.run_name
    t0 = time.time()
    report: dict[str, Any] = {
        "suite": "proxy", "run_name": args.run_name, "model": "stand-in upstream (answers at once)",
        "upstream": "minimal OpenAI-compatible server on 127.0.0.1 (own process)",
        "backend": "agentedit serve (uvicorn, 1 process, API keys on, embedded Chroma)", "load_and_crash_scope": "similarity",
        "embedder": "all-MiniLM-L6-v2 (CPU)", "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": 0, "config": vars(args), "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    earlier = json.loads((out / "results.json").read_text("utf-8")) if (out / "results.json").exists() else {}
    kept = [part for part in args.skip if part in earlier]
    for part in kept:
        report[part] = earlier[part]
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
        qs = questions(cases, args.requests, args.seed)
        if "latency" not in args.skip:
            report["latency"] = {}
            for scope in args.scopes:
                report["latency"][scope] = {}
                for size in args.sizes:
                    store = build_store(work, size, cases)
                    report["latency"][scope][str(size)] = measure_latency(work, store, upstream, qs, scope)
                    log.info("latency, %s scope, %d edits: %s", scope, size, report["latency"][scope][str(size)])
                    write_report(out, report)
        if "load" not in args.skip:
            size = max(args.sizes)
            store = build_store(work, size, cases)
            report["load"] = {**measure_load(work, store, upstream, qs, args.clients, args.duration), "n_edits_in_memory": size}
            log.info("load: %s", {k: v for k, v in report["load"].items() if k != "per_second"})
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
