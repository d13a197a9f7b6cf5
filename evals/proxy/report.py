"""results.json, summary.md and the PNG plots of a proxy benchmark run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentedit.evaluation.report import line_plot, md_table, write_json

def write_report(out: Path, report: dict[str, Any]) -> None:
    write_json(out / "results.json", report)
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
        cols = ["backend", "unique_questions", "requests_ok", "errors", "per_s", "p50_ms", "p95_ms", "p99_ms",
                "proxy_rss_mb", "load_avg_1m_at_start"]
        lines += [f"## Load: {loads[0]['clients']} concurrent clients for ~{loads[0]['duration_s']} s "
                  f"({loads[0]['n_edits_in_memory']} edits, {loads[0]['scope']} scope)", "",
                  md_table(loads, cols), "",
                  "Errors by kind: " + "; ".join(f"{r['backend']}{' unique' if r['unique_questions'] else ''}: "
                                                 f"{r['error_kinds'] or 'none'}" for r in loads) + ". With "
                  "`unique_questions` False the clients cycle through 300 questions, so after the first round the query "
                  "LRU answers the embedding; True appends a serial number to every question (every request embeds). "
                  "The load generator and the stand-in upstream run on the same 2 cores.", ""]
        line_plot(out / "load.png", list(range(max(len(r["per_second"]) for r in loads))),
                  {f"{r['backend']}{' (new question each request)' if r['unique_questions'] else ''}":
                   r["per_second"] + [float("nan")] * (max(len(x["per_second"]) for x in loads) - len(r["per_second"]))
                   for r in loads}, xlabel="second", ylabel="requests completed", title=f"{loads[0]['clients']} clients",
                  logx=False)
    imports = report.get("import")
    if imports:
        cols = ["backend", "batch", "stored", "seconds", "edits_per_s", "embed_s", "embed_texts_per_s", "rest_s",
                "load_avg_1m_at_start"]
        lines += ["## Import: one batch into a fresh embedded store (add_many)", "", md_table(imports, cols), "",
                  "`embed_s`: time inside the embedder during the call; `rest_s`: validation, ledger and index writes.", ""]
    if report.get("stores"):
        lines += ["## Stores", "", md_table([{"edits": k, **v} for k, v in report["stores"].items()],
                                            ["edits", "active", "unfinished", "build_s", "edits_per_s", "resumed_at",
                                             "embedder_backend"]), "",
                  "CounterFact's 10,000 training cases, then synthetic facts 'First Last works as a JOB in CITY.' "
                  "(evals/proxy/stores.py), written with add_many in batches of 5,000 (build figures: the run that built "
                  "the store, at nice 19 while other work shared the machine).", ""]
    crash = report.get("crash")
    if crash:
        cols = ["trial", "kill", "kill_at_s", "index_write_in_progress", "batch_reply", "batch_present", "all_or_nothing",
                "acknowledged_singles", "acknowledged_missing", "index_agrees", "consistent_serving"]
        lines += [f"## Crash safety: SIGKILL during a {crash['batch_size']}-edit batch import", "",
                  md_table(crash["trials"], cols), "",
                  f"All or nothing: **{crash['all_or_nothing']}**; acknowledged edits missing after restart: "
                  f"**{crash['acknowledged_missing']}**; index agrees with the ledger: **{crash['index_agrees']}**.", ""]
    (out / "summary.md").write_text("\n".join(lines), "utf-8")
