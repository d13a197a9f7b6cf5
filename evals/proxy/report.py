"""results.json, summary.md and the PNG plots of a proxy benchmark run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentedit.evaluation.report import line_plot, md_table, write_json

def side_by_side(report: dict[str, Any], new: str = "onnx", old: str = "torch") -> list[dict[str, Any]]:
    """The same figure for the new and the old embedder runtime, measured in this run, and old/new (or new/old for a
    rate: higher is better for both ratios)."""
    rows: list[dict[str, Any]] = []

    def add(figure: str, a: Any, b: Any, rate: bool = False) -> None:
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a and b:
            rows.append({"figure": figure, new: a, old: b, "speed-up": round(a / b if rate else b / a, 2)})

    emb = report.get("embedder_alone") or {}
    if new in emb and old in emb:
        add("embed one question, p50 ms", emb[new]["single_p50_ms"], emb[old]["single_p50_ms"])
        add("embed a batch, texts/s", emb[new]["batch_texts_per_s"], emb[old]["batch_texts_per_s"], rate=True)
    for scope_key, by_size in (report.get("prepare") or {}).items():
        if scope_key.endswith("/" + new):
            other = (report.get("prepare") or {}).get(scope_key[:-len(new)] + old, {})
            for size, r in by_size.items():
                if size in other:
                    add(f"prepare in-process p50 ms, {size} edits", r["direct_p50_ms"], other[size]["direct_p50_ms"])
    lat = report.get("latency") or {}
    for key, by_size in lat.items():
        if key.endswith("/" + new):
            other = lat.get(key[:-len(new)] + old, {})
            for size, r in by_size.items():
                if size in other:
                    for mode in ("plain", "stream_ttft"):
                        add(f"added p50 ms, {mode}, {size} edits", r[mode]["added_p50_ms"], other[size][mode]["added_p50_ms"])
                    add(f"retrieve+scope p50 ms, {size} edits", r["plain"]["server_retrieve_scope_p50_ms"],
                        other[size]["plain"]["server_retrieve_scope_p50_ms"])
                    add(f"proxy RSS MiB, {size} edits", r.get("proxy_rss_mb"), other[size].get("proxy_rss_mb"))
    for key, by_size in lat.items():  # the direct upstream client against litellm, same store and embedder
        base = lat.get(key[:-len("/litellm")], {}) if key.endswith("/litellm") else {}
        for size, r in by_size.items():
            if size in base:
                for mode in ("plain", "stream_ttft", "plain_repeat"):
                    add(f"added p50 ms, {mode}, {size} edits (direct client | litellm)", base[size][mode]["added_p50_ms"],
                        r[mode]["added_p50_ms"])
    loads = {(r["backend"], r["unique_questions"]): r for r in report.get("load") or [] if r.get("workers", 1) == 1}
    if (new, False) in loads and (old, False) in loads:
        add("32 clients, requests/s", loads[new, False]["per_s"], loads[old, False]["per_s"], rate=True)
    imports = {r["backend"]: r for r in report.get("import") or []}
    if new in imports and old in imports:
        add("import, edits/s", imports[new]["edits_per_s"], imports[old]["edits_per_s"], rate=True)
    return rows


def ratio_plot(path: Path, rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    bars = ax.barh([r["figure"] for r in rows], [r["speed-up"] for r in rows], color="tab:green")
    ax.bar_label(bars, fmt="%.2fx", fontsize=8)
    ax.axvline(1.0, color="grey", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up of ONNX Runtime over torch (same run)")
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(out: Path, report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Proxy benchmark: {report['run_name']}", "",
             f"Machine: {report['machine']}. Upstream: {report['upstream']}. Proxy: {report['backend']}; "
             f"embedder {report['embedder']}. Started {report['started']}, {report['wall_s']} s. "
             f"Load average (1 min) {report['load_avg_1m_at_start']} at the start, {report.get('load_avg_1m_at_end', '?')} "
             "at the end (other jobs shared the machine when this is above the core count).", ""]
    if report.get("kept_from_earlier_run"):
        kept = report["kept_from_earlier_run"]
        lines += [f"The {', '.join(kept['parts'])} figures come from the run started {kept['started']} "
                  f"(load average {kept['load_avg_1m_at_start']} at its start); the rest from this one.", ""]
    emb = report.get("embedder_alone")
    if emb:
        rows = [{"backend": b, **emb[b]} for b in emb if isinstance(emb[b], dict)]
        lines += ["## The embedder alone (in-process, no LRU)", "", md_table(rows, list(rows[0])), "",
                  f"{emb['questions']} CounterFact paraphrases one at a time, then in one batch with 256 more prompts. "
                  f"Smallest cosine between the backends' vectors: {emb.get('min_cosine_between_backends', 'n/a')}. "
                  f"Load average at the start: {emb['load_avg_1m_at_start']}.", ""]
    prep = report.get("prepare", {})
    if prep:
        rows = [{"scope/backend": key, "edits": size, **r} for key, by_size in prep.items() for size, r in by_size.items()]
        lines += ["## The workflow in-process: direct single pass vs LangGraph's scheduler (ms)", "",
                  md_table(rows, ["scope/backend", "edits", "questions", "direct_p50_ms", "langgraph_p50_ms",
                                  "retrieve_scope_p50_ms", "load_avg_1m"]), "",
                  "`Editor.prepare_chat` (plan, retrieve, scope, compose as plain calls) against the same nodes through "
                  "the compiled LangGraph graph, alternating question by question (different questions per path, none "
                  "cached); `retrieve_scope` is what the workflow itself reports for those two steps.", ""]
    lat = report.get("latency", {})
    if lat:
        rows = []
        for key, by_size in lat.items():
            for size, r in by_size.items():
                for mode in ("plain", "stream_ttft", "plain_repeat"):
                    m = r[mode]
                    rows.append({"scope/backend": key, "edits": size, "request": mode, "direct p50": m["direct_p50_ms"],
                                 "proxy p50": m["proxy_p50_ms"], "added p50": m["added_p50_ms"], "added p95": m["added_p95_ms"],
                                 "retrieve p50": m["server_retrieve_p50_ms"], "scope p50": m["server_scope_p50_ms"],
                                 "retrieve+scope p50": m["server_retrieve_scope_p50_ms"],
                                 "applied (rel.)": m["applied_fraction_related"],
                                 "applied (unrel.)": m["applied_fraction_unrelated"], "RSS MiB": r.get("proxy_rss_mb"),
                                 "load": r.get("load_avg_1m")})
        lines += ["## Added latency (ms, one client, sequential requests)", "",
                  md_table(rows, list(rows[0])), "",
                  "`added` = proxy minus direct at the same percentile; `stream_ttft` is time to the first content token; "
                  "`plain_repeat` asks the `plain` questions again (the query embedding comes from the LRU; retrieval and "
                  "the scope check run as always). `retrieve` and `scope` are the proxy's own timings of those steps "
                  "(retrieve embeds the question and searches the index; the relation-clauses checker embeds the "
                  "question's clauses). `applied`: fraction of questions that got an edit. `RSS`: the proxy's resident "
                  "memory after the run. `load`: 1-minute load average after the run.", ""]
        series: dict[str, list[float]] = {}
        sizes = sorted({int(size) for by_size in lat.values() for size in by_size})
        for key, by_size in lat.items():
            have = [x for x in sizes if str(x) in by_size]
            for mode in ("plain", "stream_ttft"):
                series[f"{key}: {mode}, added p50"] = [by_size[str(x)][mode]["added_p50_ms"] if str(x) in by_size
                                                       else float("nan") for x in sizes] if have else []
        line_plot(out / "added_latency.png", sizes, {k: v for k, v in series.items() if v}, xlabel="edits in memory",
                  ylabel="ms added by the proxy (p50)", title="Latency the proxy adds")
    loads = report.get("load") or []
    if loads:
        cols = ["backend", "workers", "index", "load_client", "unique_questions", "requests_ok", "errors", "per_s", "p50_ms", "p95_ms", "p99_ms",
                "proxy_cpu_s", "per_proxy_cpu_s", "load_generator_cpu_s", "proxy_rss_mb", "load_avg_1m_at_start"]
        lines += [f"## Load: {loads[0]['clients']} concurrent clients for ~{loads[0]['duration_s']} s "
                  f"({loads[0]['n_edits_in_memory']} edits, {loads[0]['scope']} scope)", "",
                  md_table(loads, cols), "",
                  "Errors by kind: " + "; ".join(f"{r['backend']}{' unique' if r['unique_questions'] else ''}: "
                                                 f"{r['error_kinds'] or 'none'}" for r in loads) + ". With "
                  "`unique_questions` False the clients cycle through 300 questions, so after the first round the query "
                  "LRU answers the embedding; True appends a serial number to every question (every request embeds). "
                  "`proxy_cpu_s`: CPU time the proxy process used during the run (all its threads); `per_proxy_cpu_s`: "
                  "requests per CPU-second of the proxy, i.e. requests/s per fully used core (with workers: the "
                  "supervisor, every worker and the `chroma run` server together). "
                  "The load generator and the stand-in upstream run on the same 2 cores.", ""]
        line_plot(out / "load.png", list(range(max(len(r["per_second"]) for r in loads))),
                  {f"{r['backend']}{' x%d workers' % r['workers'] if r.get('workers', 1) > 1 else ''}"
                   f"{' (new question each request)' if r['unique_questions'] else ''}":
                   r["per_second"] + [float("nan")] * (max(len(x["per_second"]) for x in loads) - len(r["per_second"]))
                   for r in loads}, xlabel="second", ylabel="requests completed", title=f"{loads[0]['clients']} clients",
                  logx=False)
    imports = report.get("import")
    if imports:
        cols = ["backend", "batch", "stored", "seconds", "edits_per_s", "embed_s", "embed_texts_per_s", "rest_s",
                "load_avg_1m_at_start"]
        lines += ["## Import: one batch into a fresh embedded store (add_many)", "", md_table(imports, cols), "",
                  "`embed_s`: time inside the embedder during the call; `rest_s`: validation, ledger and index writes. "
                  "The other backends' batch is smaller (`--import-batch-others`) and ran at its own load average: "
                  "compare rates with that in mind.", ""]
    if report.get("stores"):
        lines += ["## Stores", "", md_table([{"edits": k, **v} for k, v in report["stores"].items()],
                                            ["edits", "active", "unfinished", "build_s", "edits_per_s", "resumed_at",
                                             "embedder_backend", "snapshot_of"]), "",
                  "CounterFact's 10,000 training cases, then synthetic facts 'First Last works as a JOB in CITY.' "
                  "(evals/proxy/stores.py), written with add_many in batches of 5,000 (build figures: the run that built "
                  "the store, at nice 19 while other work shared the machine).", ""]
    ratios = side_by_side(report)
    report["side_by_side"] = ratios
    if ratios:
        lines += ["## New (ONNX Runtime) vs old (torch) embedder runtime, side by side in this run", "",
                  md_table(ratios, ["figure", "onnx", "torch", "speed-up"]), "",
                  "Both runtimes run the current code (direct single pass, query LRU; torch at one thread as the proxy "
                  "runs it, ONNX Runtime one thread per call and a batch over both cores), so this isolates the embedder; "
                  "the previous proxy-bench (torch, LangGraph scheduler) is the whole before.", ""]
        ratio_plot(out / "side_by_side.png", ratios)
    crash = report.get("crash")
    if crash:
        cols = ["trial", "kill", "kill_at_s", "index_write_in_progress", "batch_reply", "batch_present", "all_or_nothing",
                "acknowledged_singles", "acknowledged_missing", "index_agrees", "consistent_serving"]
        lines += [f"## Crash safety: SIGKILL during a {crash['batch_size']}-edit batch import", "",
                  md_table(crash["trials"], cols), "",
                  f"All or nothing: **{crash['all_or_nothing']}**; acknowledged edits missing after restart: "
                  f"**{crash['acknowledged_missing']}**; index agrees with the ledger: **{crash['index_agrees']}**.", ""]
    (out / "summary.md").write_text("\n".join(lines), "utf-8")
    write_json(out / "results.json", report)
