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
    lat = report.get("latency", {})
    if lat:
        rows = []
        for scope, by_size in lat.items():
            for size, r in by_size.items():
                for mode in ("plain", "stream_ttft"):
                    m = r[mode]
                    rows.append({"scope": scope, "edits": size, "request": mode, "direct p50": m["direct_p50_ms"],
                                 "proxy p50": m["proxy_p50_ms"], "added p50": m["added_p50_ms"], "direct p95": m["direct_p95_ms"],
                                 "proxy p95": m["proxy_p95_ms"], "added p95": m["added_p95_ms"],
                                 "retrieve p50": m["server_retrieve_p50_ms"], "scope p50": m["server_scope_p50_ms"],
                                 "applied (related)": m["applied_fraction_related"],
                                 "applied (unrelated)": m["applied_fraction_unrelated"]})
        lines += ["## Added latency (ms, one client, sequential requests)", "",
                  md_table(rows, list(rows[0])), "",
                  "`added` = proxy minus direct at the same percentile; `stream_ttft` is time to the first content token. "
                  "`retrieve` and `scope` are the proxy's own timings of those steps (retrieve embeds the question and "
                  "searches the index; the relation checker embeds again). `applied` is the fraction of questions that got "
                  "an edit: paraphrases of stored edits (related) and unrelated prompts.", ""]
        series: dict[str, list[float]] = {}
        sizes = sorted({int(size) for by_size in lat.values() for size in by_size})
        for scope, by_size in lat.items():
            if all(str(x) in by_size for x in sizes):
                series[f"{scope}: plain, added p50"] = [by_size[str(x)]["plain"]["added_p50_ms"] for x in sizes]
                series[f"{scope}: stream TTFT, added p50"] = [by_size[str(x)]["stream_ttft"]["added_p50_ms"] for x in sizes]
        line_plot(out / "added_latency.png", sizes, series, xlabel="edits in memory", ylabel="ms added by the proxy (p50)",
                  title="Latency the proxy adds")
    load = report.get("load")
    if load:
        lines += [f"## Load: {load['clients']} concurrent clients for {load['duration_s']} s ({load['n_edits_in_memory']} edits, "
                  f"{report.get('load_and_crash_scope', 'similarity')} scope)", "",
                  md_table([load], ["requests_ok", "errors", "per_s", "p50_ms", "p95_ms", "p99_ms"]), "",
                  f"Errors by kind: {load['error_kinds'] or 'none'}. The load generator runs on the same machine.", ""]
        line_plot(out / "load.png", list(range(len(load["per_second"]))), {"completed requests": load["per_second"]},
                  xlabel="second", ylabel="requests completed", title=f"{load['clients']} clients", logx=False)
    crash = report.get("crash")
    if crash:
        cols = ["trial", "kill", "kill_at_s", "index_write_in_progress", "batch_reply", "batch_present", "all_or_nothing",
                "acknowledged_singles", "acknowledged_missing", "index_agrees", "consistent_serving"]
        lines += [f"## Crash safety: SIGKILL during a {crash['batch_size']}-edit batch import", "",
                  md_table(crash["trials"], cols), "",
                  f"All or nothing: **{crash['all_or_nothing']}**; acknowledged edits missing after restart: "
                  f"**{crash['acknowledged_missing']}**; index agrees with the ledger: **{crash['index_agrees']}**.", ""]
    (out / "summary.md").write_text("\n".join(lines), "utf-8")
