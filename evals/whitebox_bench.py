"""White-box benchmark: parametric methods on CounterFact, and their cost on a 7B-shaped model.

Quality (a real model; EasyEdit's teacher-forced protocol): reliability and generality are the
share of the new target's tokens that are the model's top-1 prediction after the edit prompt and
its paraphrase; locality is the share of top-1 tokens on the locality prompt (followed by its true
answer) that the edit leaves as the unedited model had them. Protocols: ROME and FT edit one case
at a time (edit, score, revert); MEMIT edits all cases in one batch; AlphaEdit edits them one
after another and is scored once all are in.

Cost: seconds per edit (the statistics are computed first and timed apart) and peak memory
(CUDA: peak allocated; CPU: the process's peak RSS while the method ran, reset between methods on
Linux).

    python evals/whitebox_bench.py --model qwen2.5-coder-0.5b-instruct --limit 100
    python evals/whitebox_bench.py --synthetic llama-7b --device cuda          # timing, random weights
    python evals/whitebox_bench.py --synthetic small --rome-edits 3 --memit-batch 20   # the same on a CPU

Writes evals/results/<run-name>/results.json, summary.md, cases.jsonl and PNG plots.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
import logging
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

logger = logging.getLogger("whitebox_bench")

SHAPES = {  # the real models' configs, random weights: the same compute and memory as the real thing
    "llama-7b": ("llama", dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                               num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096)),
    "qwen2-7b": ("qwen2", dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                               num_key_value_heads=4, vocab_size=152064, max_position_embeddings=4096)),
    "small": ("llama", dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8,
                            num_key_value_heads=8, vocab_size=32000, max_position_embeddings=2048)),
}
METHODS = ("rome", "memit", "ft", "alphaedit")


# -- data and models ---------------------------------------------------------------------------
def load_cases(data_dir: str | None, limit: int) -> list[dict[str, Any]]:
    """CounterFact cases as plain dicts; a built-in stand-in when the data is absent (timing runs only)."""
    from agentedit.evaluation import EvalDataError, load_dataset

    try:
        cases = load_dataset("counterfact-edit", data_dir)[:limit]
    except EvalDataError as exc:
        logger.warning("%s; using generated prompts (fine for timing, not for quality)", exc)
        countries = ["France", "Spain", "Italy", "Germany", "Japan", "Brazil", "Canada", "Egypt", "India", "Kenya"]
        return [{"id": str(i), "prompt": f"The capital city of {c} number {i} is", "subject": f"{c} number {i}",
                 "target": "Rome", "probes": []} for i, c in enumerate(countries * (limit // len(countries) + 1))][:limit]
    out = []
    for c in cases:
        e = c.edits[0]
        out.append({"id": c.case_id, "prompt": e["prompt"], "subject": e["subject"], "target": e["target_new"],
                    "probes": [{"kind": p.kind, "prompt": p.prompt, "targets": p.targets} for p in c.probes]})
    return out


def word_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A word-level tokenizer over the benchmark's own words (random-weight runs have no tokenizer files)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from agentedit.parametric.corpus import OPENINGS

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    pre = pre_tokenizers.Whitespace()
    for text in [*texts, *OPENINGS, "is a"]:
        for word, _ in pre.pre_tokenize_str(text):
            if len(vocab) < vocab_size:
                vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def synthetic_backend(shape: str, device: str, dtype: str, texts: list[str]) -> Any:
    import torch
    import transformers as tf

    from agentedit.backends.local import LocalBackend, pick_device, pick_dtype

    kind, kw = SHAPES[shape]
    cfg = (tf.LlamaConfig if kind == "llama" else tf.Qwen2Config)(**kw, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev)
    torch.manual_seed(0)
    with torch.device(dev):
        model = tf.AutoModelForCausalLM.from_config(cfg, dtype=torch_dtype).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LocalBackend.from_model(model, word_tokenizer(texts, cfg.vocab_size), name=f"random-{shape}")


# -- measuring ---------------------------------------------------------------------------------
class Meter:
    """Peak memory of one method: CUDA's peak allocated, or on a CPU the process's peak resident set (VmHWM), which
    Linux lets a process reset (``/proc/self/clear_refs``); elsewhere it is the peak since the process started."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.per_method = True

    def reset(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.per_method = False

    def peak_gb(self) -> float:
        if self.cuda:
            import torch

            return round(torch.cuda.max_memory_allocated() / 2**30, 3)
        if self.per_method:
            try:
                for line in Path("/proc/self/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        return round(int(line.split()[1]) / 2**20, 3)
            except OSError:
                pass
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)


def probe_pairs(case: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, prefix, continuation) per probe; locality continues with the true answer."""
    out = []
    for p in case["probes"]:
        if p["kind"] in ("reliability", "generality"):
            out.append((p["kind"], p["prompt"], case["target"]))
        elif p["kind"] == "locality" and p["targets"]:
            out.append(("locality", p["prompt"], p["targets"][0]))
    return out


def score_cases(backend: Any, cases: list[dict[str, Any]], reference: dict[tuple[str, int], list[int]] | None) -> list[dict[str, Any]]:
    jobs = [(c, i, kind, pre, cont) for c in cases for i, (kind, pre, cont) in enumerate(probe_pairs(c))]
    scores = backend.score([(pre, cont) for _, _, _, pre, cont in jobs])
    rows = []
    for (case, i, kind, pre, cont), s in zip(jobs, scores):
        if kind == "locality":
            ref = reference.get((case["id"], i)) if reference is not None else s.top1
            value = sum(int(a == b) for a, b in zip(s.top1, ref)) / len(ref) if ref else 0.0
        else:
            value = s.accuracy
        rows.append({"case_id": case["id"], "probe_idx": i, "kind": kind, "prompt": pre, "target": cont,
                     "score": round(value, 4), "top1": s.top1})
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind in ("reliability", "generality", "locality"):
        mine = [r["score"] for r in rows if r["kind"] == kind]
        if mine:
            out[kind] = round(sum(mine) / len(mine), 4)
    return out


def run_method(name: str, ctx: Any, cases: list[dict[str, Any]], args: argparse.Namespace, meter: Meter,
               reference: dict[tuple[str, int], list[int]] | None, quality: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from agentedit.parametric import EditRequest, make_method

    editor = make_method(name, ctx, editor_configs(args)[name])
    reqs = [EditRequest.make(c["prompt"], c["subject"], c["target"], id=c["id"]) for c in cases]
    rows: list[dict[str, Any]] = []
    edit_s, done = 0.0, 0
    deadline = time.perf_counter() + args.method_budget_s
    meter.reset()
    if name == "memit":
        logger.info("memit: one batch of %d edits", len(reqs))
        t = time.perf_counter()
        delta = editor.apply(reqs)
        edit_s, done = time.perf_counter() - t, len(reqs)
        if quality:
            rows = score_cases(ctx.backend, cases, reference)
        editor.revert(delta)
    elif name == "alphaedit":  # lifelong: one after another, scored when all are in
        deltas = []
        for req in reqs:
            if time.perf_counter() > deadline:
                break
            t = time.perf_counter()
            deltas.append(editor.apply([req]))
            edit_s, done = edit_s + time.perf_counter() - t, done + 1
            _progress(name, done, len(reqs), edit_s)
        if quality:
            rows = score_cases(ctx.backend, cases[:done], reference)
        for d in reversed(deltas):
            editor.revert(d)
    else:  # single: edit, score, revert
        for case, req in zip(cases, reqs):
            if time.perf_counter() > deadline:
                break
            t = time.perf_counter()
            delta = editor.apply([req])
            edit_s, done = edit_s + time.perf_counter() - t, done + 1
            _progress(name, done, len(reqs), edit_s)
            if quality:
                rows += score_cases(ctx.backend, [case], reference)
            editor.revert(delta)
    protocol = {"memit": f"batch of {done}", "alphaedit": f"{done} sequential"}.get(name, "single (edit, score, revert)")
    res = {"protocol": protocol, "n_edits": done, "seconds_per_edit": round(edit_s / max(done, 1), 3),
           "edit_s_total": round(edit_s, 2), "peak_memory_gb": meter.peak_gb(), **summarise(rows)}
    if done < len(cases):
        res["note"] = f"stopped after {done} of {len(cases)} edits (--method-budget-s {args.method_budget_s:g})"
    logger.info("%s: %s", name, res)
    return res, [{**r, "method": name} for r in rows]


def _progress(name: str, done: int, total: int, edit_s: float) -> None:
    if done % 10 == 0 or done == total:
        logger.info("%s: %d/%d edits, %.1f s per edit so far", name, done, total, edit_s / done)


def editor_configs(args: argparse.Namespace) -> dict[str, Any]:
    """The methods' defaults, with the target search shortened where the command line asks."""
    from agentedit.parametric import AlphaEditConfig, FTConfig, MEMITConfig, ROMEConfig, TargetConfig

    def target() -> TargetConfig:
        return TargetConfig(steps=args.steps, n_contexts=args.contexts)

    return {"rome": ROMEConfig(target=target()), "memit": MEMITConfig(target=target()), "ft": FTConfig(steps=args.ft_steps),
            "alphaedit": AlphaEditConfig(target=target())}


# -- report ------------------------------------------------------------------------------------
def cost_plot(path: Path, methods: dict[str, dict[str, Any]], title: str) -> None:
    """Seconds per edit and peak memory, one bar per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(methods)
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.6 * len(names) + 1.8))
    for ax, key, label in zip(axes, ("seconds_per_edit", "peak_memory_gb"), ("seconds per edit", "peak memory (GB)")):
        vals = [float(methods[n].get(key) or 0.0) for n in names]
        bars = ax.barh(names, vals)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.set_xlabel(label)
        ax.invert_yaxis()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(out: Path, report: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    from agentedit.evaluation.report import bar_plot, md_table, write_json

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", report)
    with open(out / "cases.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    methods = report["methods"]
    metrics = [m for m in ("reliability", "generality", "locality") if any(m in v for v in methods.values())]
    cols = ["method", "protocol", *metrics, "n_edits", "seconds_per_edit", "peak_memory_gb", "note"]
    lines = [f"# White-box editors: {report['model']}", "",
             f"Backend {report['backend']} ({report['dtype']} on {report['device']}); machine: {report['machine']}; "
             f"started {report['started']}; wall time {report['wall_s']} s.", "",
             f"Statistics: {report['corpus']} ({report['stats_s']} s for layers {report['stats_layers']}, cached on disk "
             "afterwards and not counted in seconds per edit).", ""]
    if metrics:
        lines += [f"Scoring: {report['scoring']}.", ""]
    lines += [md_table([{"method": m, **v} for m, v in methods.items()], cols), ""]
    if metrics:
        bar_plot(out / "methods.png", methods, metrics, f"{report['model']}: CounterFact, {report['n_cases']} cases")
        lines += ["![methods](methods.png)", ""]
    edited = {m: v for m, v in methods.items() if v.get("seconds_per_edit") is not None}
    if edited:
        cost_plot(out / "cost.png", edited, f"{report['model']}: {report['dtype']} on {report['device']}")
        lines += ["![cost](cost.png)", ""]
    lines += report.get("notes", [])
    (out / "summary.md").write_text("\n".join(lines) + "\n", "utf-8")


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
    ap.add_argument("--method-budget-s", type=float, default=1e9, help="stop a single/sequential method's loop after this long")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--cache-dir", default=None, help="statistics cache (default: the agentedit cache)")
    ap.add_argument("--run-name", default=None)
    ap.add_argument("--out-dir", default=str(Path(__file__).resolve().parent / "results"), help="where run folders go")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


    from agentedit.backends.local import LocalBackend
    from agentedit.parametric import EditContext, SampledCorpus, TextCorpus, make_method
    from agentedit.provision import cache_dir

    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S"), time.perf_counter()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    quality = args.synthetic is None
    n = args.limit if quality else max(args.memit_batch, args.rome_edits)
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
    layers = sorted({L for m in methods for L in _layers(make_method(m, ctx, editor_configs(args)[m]))})
    t = time.perf_counter()
    ctx.moments.prefetch(layers)
    stats_s = round(time.perf_counter() - t, 1)

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
        mine = cases if (quality or method in ("memit", "alphaedit")) else cases[: args.rome_edits]
        if not quality and method == "memit":
            mine = cases[: args.memit_batch]
        res, r = run_method(method, ctx, mine, args, meter, reference, quality)
        results[method], rows = res, rows + r
        report = _report(args, backend, label, started, t0, load_s, cases, corpus, stats_s, layers, results, quality, methods,
                         meter)
        write(out, report, rows)
    print(json.dumps({k: v for k, v in report.items() if k != "notes"}, indent=2))  # the script's output
    return 0


def _report(args: argparse.Namespace, backend: Any, label: str, started: str, t0: float, load_s: float,
            cases: list[dict[str, Any]], corpus: Any, stats_s: float, layers: list[int], results: dict[str, Any],
            quality: bool, methods: list[str], meter: Meter) -> dict[str, Any]:
    import torch

    from agentedit.evaluation.report import machine

    return {"suite": "whitebox", "dataset": "counterfact-edit" if quality else "timing prompts",
              "model": label, "backend": "transformers (agentedit.backends.local)", "device": backend.device,
              "dtype": str(next(backend.model.parameters()).dtype).replace("torch.", ""),
              "scoring": "teacher-forced top-1 token accuracy (EasyEdit protocol); locality against the unedited model"
              if quality else "none (random weights: timing and memory only)",
              "machine": machine(), "torch_threads": torch.get_num_threads(), "started": started,
              "wall_s": round(time.perf_counter() - t0, 1), "load_s": load_s, "n_cases": len(cases),
              "corpus": (f"{corpus.id} ({args.corpus_file})" if args.corpus_file
                         else f"{corpus.id} (text sampled from the unedited model at temperature 1)"), "stats_s": stats_s,
              "stats_layers": layers, "methods": results,
              "configs": {m: asdict(c) for m, c in editor_configs(args).items() if m in methods}, "cases": "cases.jsonl",
              "notes": ["Locality is the share of the unedited model's top-1 tokens on the locality prompt that the "
                        "edit keeps. " + ("Peak memory on a CPU is the process's peak RSS while the method ran (which includes "
                        "the loaded model)." if meter.per_method else "Peak memory on a CPU is the process's peak RSS so "
                        "far, so it only grows from row to row.")]}


def _layers(editor: Any) -> tuple[int, ...]:
    cfg = editor.config
    if hasattr(editor, "layers") and callable(editor.layers):
        return editor.layers()
    layout = editor.ctx.layout
    if getattr(cfg, "layer", None) is not None:
        return (cfg.layer,)
    if getattr(cfg, "layers", None):
        return tuple(cfg.layers)
    return layout.default_layers(1)


if __name__ == "__main__":
    raise SystemExit(main())
