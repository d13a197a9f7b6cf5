"""White-box benchmark: parametric methods on CounterFact, and their cost on a 7B-shaped model.

Quality (a real model; EasyEdit's teacher-forced protocol): reliability and generality are the
share of the new target's tokens that are the model's top-1 prediction after the edit prompt and
its paraphrase; locality is the share of top-1 tokens on the locality prompt (followed by its true
answer) that the edit leaves as the unedited model had them. Protocols: ROME and FT edit one case
at a time (edit, score, revert); MEMIT edits all cases in one batch; AlphaEdit edits them one
after another and is scored once all are in.

Cost: seconds per edit (the statistics are computed first and timed apart), milliseconds per query (a
teacher-forced pass over one prompt and target) unedited and, for the sequential methods (AlphaEdit,
GRACE, WISE), after 1, 10, 100, 1000 edits (the inference overhead as edits accumulate), and peak memory
(CUDA: peak allocated; CPU: the process's peak RSS while the method ran, reset between methods on
Linux).

    python evals/whitebox_bench.py --model qwen2.5-coder-0.5b-instruct --limit 100
    python evals/whitebox_bench.py --synthetic llama-7b --device cuda          # timing, random weights
    python evals/whitebox_bench.py --synthetic small --rome-edits 3 --memit-batch 20   # the same on a CPU
    python evals/whitebox_bench.py --synthetic llama-7b --device cuda --methods grace,wise,alphaedit --sequential-edits 100

Writes evals/results/<run-name>/results.json, summary.md, cases.jsonl and PNG plots.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentedit.settings import offline_defaults  # noqa: E402
from evals.whitebox.measure import (SEQUENTIAL, Meter, editor_configs, layers_of, query_time, run_method,  # noqa: E402
                                    score_cases, summarise)
from evals.whitebox.models import METHODS, SHAPES, load_cases, synthetic_backend  # noqa: E402
from evals.whitebox.report import build_report, write  # noqa: E402

logger = logging.getLogger("whitebox_bench")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct", help="short name, .gguf file, directory or cached hub id")
    ap.add_argument("--synthetic", choices=sorted(SHAPES), help="a random-weight model of this shape (timing only)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto", help="auto: bf16 on CUDA, fp32 on CPU")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--limit", type=int, default=100, help="CounterFact cases (the MEMIT batch and the AlphaEdit sequence)")
    ap.add_argument("--rome-edits", type=int, default=10, help="single edits to time with --synthetic (ROME and FT)")
    ap.add_argument("--memit-batch", type=int, default=100, help="MEMIT batch size with --synthetic")
    ap.add_argument("--corpus-samples", type=int, default=64)
    ap.add_argument("--corpus-length", type=int, default=128)
    ap.add_argument("--corpus-file", default=None,
                    help="statistics from this text file (rows of --corpus-length tokens, at most --corpus-samples rows) "
                         "instead of text sampled from the model")
    ap.add_argument("--steps", type=int, default=20, help="target-search steps (ROME, MEMIT, AlphaEdit)")
    ap.add_argument("--contexts", type=int, default=4, help="context prefixes the target is optimised under")
    ap.add_argument("--ft-steps", type=int, default=25)
    ap.add_argument("--adapter-steps", type=int, default=None, help="GRACE/WISE optimisation steps (default: theirs)")
    ap.add_argument("--sequential-edits", type=int, default=None,
                    help="edits applied one after another with --synthetic (AlphaEdit, GRACE, WISE; default --memit-batch)")
    ap.add_argument("--method-budget-s", type=float, default=1e9, help="stop a single/sequential method's loop after this long")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--cache-dir", default=None, help="statistics cache (default: the agentedit cache)")
    ap.add_argument("--run-name", default=None)
    ap.add_argument("--out-dir", default=str(Path(__file__).resolve().parent / "results"), help="where run folders go")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    offline_defaults()  # before transformers is imported

    from agentedit.backends.local import LocalBackend
    from agentedit.parametric import EditContext, SampledCorpus, TextCorpus, make_method
    from agentedit.provision import cache_dir

    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S"), time.perf_counter()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    quality = args.synthetic is None
    n = args.limit if quality else max(args.memit_batch, args.rome_edits, args.sequential_edits or 0)
    cases = load_cases(args.data_dir, n)
    if args.synthetic:
        texts = [c["prompt"] for c in cases] + [c["target"] for c in cases]
        backend = synthetic_backend(args.synthetic, args.device, args.dtype, texts)
        label = f"random weights, {args.synthetic} shape ({SHAPES[args.synthetic][0]} config)"
    else:
        backend = LocalBackend(args.model, device=args.device, dtype=args.dtype)
        label = args.model
    t = time.perf_counter()
    _ = backend.model  # load now, not inside the first timing
    load_s = round(time.perf_counter() - t, 1)
    if args.corpus_file:
        corpus: Any = TextCorpus(args.corpus_file, length=args.corpus_length, max_rows=args.corpus_samples)
    else:
        corpus = SampledCorpus(n_samples=args.corpus_samples, length=args.corpus_length)
    ctx = EditContext.create(backend, corpus=corpus, cache_dir=args.cache_dir or cache_dir())
    meter = Meter(backend.device)
    layers = sorted({L for m in methods for L in layers_of(make_method(m, ctx, editor_configs(args)[m]))})
    t = time.perf_counter()
    ctx.moments.prefetch(layers)
    stats_s = round(time.perf_counter() - t, 1)

    unedited_query_ms = query_time(backend, cases)
    reference = None
    if quality:
        reference = {(r["case_id"], r["probe_idx"]): r["top1"] for r in score_cases(backend, cases, None) if r["kind"] == "locality"}
    results: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    if quality:
        results["none"] = {"protocol": "unedited", **summarise(score_cases(backend, cases, reference)), "n_edits": 0}
    name = args.run_name or (f"whitebox-{args.synthetic}-{backend.device}" if args.synthetic else
                             f"whitebox-{Path(args.model).stem}-{len(cases)}")
    out = Path(args.out_dir) / name
    for method in methods:  # the report is rewritten after each method, so a cut-short run keeps what it measured
        mine = cases if (quality or method in ("memit", *SEQUENTIAL)) else cases[: args.rome_edits]
        if not quality and method == "memit":
            mine = cases[: args.memit_batch]
        if not quality and method in SEQUENTIAL:
            mine = cases[: args.sequential_edits or args.memit_batch]
        res, r = run_method(method, ctx, mine, args, meter, reference, quality)
        results[method], rows = res, rows + r
        report = build_report(args, backend, label, started, t0, load_s, cases, corpus, stats_s, layers, results, quality,
                              methods, meter)
        report["query_ms_unedited"] = unedited_query_ms
        write(out, report, rows)
    print(json.dumps({k: v for k, v in report.items() if k != "notes"}, indent=2))  # the script's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
