"""The ``agentedit`` command line: the Editor's verbs, for people and scripts (``--json``)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import AgentEditError
from .settings import offline_defaults
from .scope import CHECKERS, DEFAULT_CHECKER

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Change what an LLM knows, without retraining it.")
namespace_app = typer.Typer(no_args_is_help=True, help="Manage namespaces of a store.")
app.add_typer(namespace_app, name="namespace")
console = Console()
err_console = Console(stderr=True)


@dataclass
class Options:
    store: str
    store_dir: Optional[str]
    model: Optional[str]
    api_base: Optional[str]
    namespace: str
    scope: str
    method: Optional[str] = None
    scope_model: Optional[str] = None
    stats_corpus: Optional[str] = None

    def scope_model_dir(self) -> str:
        """``--scope-model`` if given, else the store's own ``scope-model`` folder."""
        from .memory.store import store_root
        from .scope.trained import MODEL_DIRNAME

        return self.scope_model or str(store_root(self.store_dir) / self.store / MODEL_DIRNAME)


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


@app.callback()
def _main(
    ctx: typer.Context,
    store: str = typer.Option("default", "--store", envvar="AGENTEDIT_STORE", help="Name of the edit store (a folder under the store dir)."),
    store_dir: Optional[str] = typer.Option(None, "--store-dir", envvar="AGENTEDIT_STORES", help="Where stores live (default ./stores)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", envvar="AGENTEDIT_MODEL",
                                        help="litellm 'provider/model', 'llamacpp:<name|file.gguf>', or 'hf:<hub id|dir|file.gguf|name>' for "
                                             "local weights (default: embedded Qwen2.5-Coder-0.5B)."),
    api_base: Optional[str] = typer.Option(None, "--api-base", envvar="AGENTEDIT_API_BASE", help="Base URL of an OpenAI-compatible server."),
    namespace: str = typer.Option("default", "--namespace", "-n", envvar="AGENTEDIT_NAMESPACE", help="Namespace (tenant) of the edits."),
    scope: str = typer.Option(DEFAULT_CHECKER, "--scope", envvar="AGENTEDIT_SCOPE",
                              help="Scope checker: " + ", ".join(CHECKERS) + "."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
    method: Optional[str] = typer.Option(None, "--method", envvar="AGENTEDIT_METHOD",
                                         help="Route of new edits: in-context, or rome/memit/ft/alphaedit for hf: models "
                                              "(default: rome for hf: models, in-context otherwise)."),
    scope_model: Optional[str] = typer.Option(None, "--scope-model", envvar="AGENTEDIT_SCOPE_MODEL",
                                              help="Folder of the trained scope model (default: the store's scope-model folder)."),
    stats_corpus: Optional[str] = typer.Option(None, "--stats-corpus", envvar="AGENTEDIT_STATS_CORPUS",
                                               help="Text file for the ROME/MEMIT/AlphaEdit key statistics of hf: models "
                                                    "(default: text sampled from the model itself)."),
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    offline_defaults()
    ctx.obj = Options(store, store_dir, model, api_base, namespace, scope, method, scope_model, stats_corpus)


def _status(msg: str) -> None:
    err_console.print(f"[dim]… {msg}[/dim]")


@contextmanager
def _editor(ctx: typer.Context, **kw: Any) -> Iterator[Any]:
    from .editor import Editor

    o: Options = ctx.obj
    ed = Editor(o.model, api_base=o.api_base, store=o.store, store_dir=o.store_dir, namespace=o.namespace, scope=o.scope,
                progress=_status, method=o.method, scope_model=o.scope_model, stats_corpus=o.stats_corpus, **kw)
    try:
        yield ed
    finally:
        ed.close()


def _records_table(records: list[Any], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for col in ("id", "namespace", "subject", "statement", "status", "created"):
        table.add_column(col, overflow="fold")
    for r in records:
        table.add_row(r.id, r.namespace, r.subject or "", r.statement, r.status, r.created_at[:19])
    return table


@app.command()
def edit(
    ctx: typer.Context,
    prompt: Optional[str] = typer.Argument(None, help="Prompt or question the edit answers, e.g. 'The Eiffel Tower is located in'."),
    target: Optional[str] = typer.Argument(None, help="The new answer, e.g. 'Rome'."),
    subject: Optional[str] = typer.Option(None, "--subject", "-s", help="Who or what the fact is about."),
    statement: Optional[str] = typer.Option(None, "--statement", help="A plain fact instead of prompt + target."),
    target_old: Optional[str] = typer.Option(None, "--old", help="The answer being replaced (optional)."),
    edit_id: Optional[str] = typer.Option(None, "--id", help="Your own id for the edit."),
    alias: list[str] = typer.Option([], "--alias", help="Another name of the subject (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the stored record as JSON."),
) -> None:
    """Record an edit (benchmark shape, or --statement)."""
    with _editor(ctx) as ed:
        rec = ed.edit(prompt, target, subject=subject, statement=statement, target_old=target_old, id=edit_id, aliases=alias)
    if as_json:
        _emit_json(rec.to_dict())
    else:
        sup = f" (supersedes {rec.supersedes})" if rec.supersedes else ""
        console.print(f"[green]recorded[/green] {rec.id} in {rec.namespace}: {rec.statement}{sup}")
        if statement is not None:
            _show_anatomy(rec)


def _show_anatomy(rec: Any) -> None:
    """How a free-text fact was understood, and how to correct it."""
    if rec.subject:
        how = {"model": "by the model", "rules": "by the offline rules"}.get(rec.metadata.get("anatomy", ""), "as given")
        console.print(f"  subject [bold]{rec.subject}[/bold] · relation [bold]{rec.relation}[/bold] · target "
                      f"[bold]{rec.target_new}[/bold] ({how}); correct with `agentedit update {rec.id} --subject ... "
                      "--prompt ... --target ...`")
    else:
        console.print(f"  no subject found: the edit applies by similarity only; add one with `agentedit update {rec.id} "
                      "--subject ... --prompt ... --target ...`")


@app.command()
def update(
    ctx: typer.Context,
    edit_id: str = typer.Argument(..., help="The edit to change."),
    subject: Optional[str] = typer.Option(None, "--subject", "-s"),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="The prompt or question the target answers."),
    target: Optional[str] = typer.Option(None, "--target", help="The new answer."),
    statement: Optional[str] = typer.Option(None, "--statement"),
    alias: list[str] = typer.Option([], "--alias", help="Another name of the subject (repeatable; replaces the list)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Change an edit's parts (subject, prompt, target, statement, aliases); the change is logged in its history."""
    changes: dict[str, Any] = {k: v for k, v in dict(subject=subject, prompt=prompt, target_new=target, statement=statement).items()
                               if v is not None}
    with _editor(ctx) as ed:
        if alias:
            meta = dict(ed.memory.get(edit_id, namespace=ctx.obj.namespace).metadata)
            meta["aliases"] = list(alias)
            changes["metadata"] = meta
        if not changes:
            raise typer.BadParameter("nothing to change: give --subject, --prompt, --target, --statement or --alias")
        rec = ed.update(edit_id, namespace=ctx.obj.namespace, **changes)
    if as_json:
        _emit_json(rec.to_dict())
    else:
        console.print(f"[green]updated[/green] {rec.id}: {rec.statement}")
        _show_anatomy(rec)


@app.command()
def ask(
    ctx: typer.Context,
    question: str = typer.Argument(..., help="The question (or sentence prefix with --style complete)."),
    style: str = typer.Option("chat", "--style", help="chat | complete (finish a sentence) | text (raw completion)."),
    system: Optional[str] = typer.Option(None, "--system", help="A system message of your own."),
    max_tokens: int = typer.Option(256, "--max-tokens"),
    trace: bool = typer.Option(False, "--trace", help="Show retrieved edits, scope decisions, hops and timings."),
    multihop: str = typer.Option("auto", "--multihop", help="Decompose chained questions: auto (when needed) | always | never."),
    hop_limit: int = typer.Option(4, "--hop-limit", help="Most sub-questions per decomposed question."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole Answer as JSON."),
) -> None:
    """Ask a question; in-scope edits are applied, others are not."""
    with _editor(ctx, multihop=multihop, hop_limit=hop_limit) as ed:
        ans = ed.ask(question, style=style, system=system, max_tokens=max_tokens)  # type: ignore[arg-type]
    if as_json:
        _emit_json(ans.to_dict())
        return
    console.print(ans.text)
    if trace or ans.applied:
        err_console.print(f"[dim]route={ans.route} applied={ans.applied or '-'}[/dim]")
    if trace:
        err_console.print(f"  [dim]routing: {'decomposed' if ans.decomposed else 'single pass'} ({ans.route_reason})[/dim]")
        for i, h in enumerate(ans.hops, 1):
            settled = f" -> [green]{h['answer']}[/green] (edit {h['accepted']})" if h["contradicted"] else ""
            err_console.print(f"  hop {i}: {h['sub_question']} | model: {h['tentative']}{settled} | retrieved {h['retrieved'] or '-'}, "
                              f"in scope {h['accepted'] or '-'}")
        if ans.decomposed:
            err_console.print(f"  [dim]stopped: {ans.stop}; {ans.model_calls} model call(s)[/dim]")
        for d in ans.decisions:
            mark = "[green]in[/green]" if d.in_scope else "[red]out[/red]"
            err_console.print(f"  {mark} {d.edit_id} sim={d.similarity:.3f} ({d.checker}: {d.reason})")
        err_console.print("  timings (ms): " + ", ".join(f"{k}={v:.1f}" for k, v in ans.timings.items()))


@app.command()
def chat(
    ctx: typer.Context,
    message: Optional[str] = typer.Option(None, "--message", "-M", help="Send one message and exit (otherwise interactive)."),
    system: Optional[str] = typer.Option(None, "--system"),
    as_json: bool = typer.Option(False, "--json", help="Print OpenAI-shaped responses as JSON."),
) -> None:
    """Chat with the edited model (interactive, or one --message)."""
    history: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    with _editor(ctx) as ed:
        lines = [message] if message is not None else None
        while True:
            if lines is not None:
                if not lines:
                    break
                text = lines.pop(0)
            else:
                try:
                    text = console.input("[bold]you>[/bold] ")
                except (EOFError, KeyboardInterrupt):
                    break
                if text.strip() in ("/exit", "/quit"):
                    break
                if not text.strip():
                    continue
            history.append({"role": "user", "content": text})
            resp = ed.chat(history)
            reply = resp["choices"][0]["message"]["content"]
            history.append({"role": "assistant", "content": reply})
            if as_json:
                _emit_json(resp)
            else:
                applied = resp["agentedit"]["applied"]
                console.print(f"[bold cyan]model>[/bold cyan] {reply}" + (f"  [dim](edits: {', '.join(applied)})[/dim]" if applied else ""))


@app.command("list")
def list_(
    ctx: typer.Context,
    subject: Optional[str] = typer.Option(None, "--subject"),
    text: Optional[str] = typer.Option(None, "--text", help="Substring of the fact."),
    all_: bool = typer.Option(False, "--all", help="Include superseded and retracted edits."),
    every_namespace: bool = typer.Option(False, "--every-namespace", help="List edits of all namespaces."),
    limit: Optional[int] = typer.Option(None, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List edits."""
    with _editor(ctx) as ed:
        ns = None if every_namespace else ctx.obj.namespace
        recs = ed.edits(ns, subject=subject, text=text, include_inactive=all_, limit=limit)
    if as_json:
        _emit_json([r.to_dict() for r in recs])
    else:
        console.print(_records_table(recs, f"{len(recs)} edit(s)"))


@app.command()
def forget(ctx: typer.Context, edit_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Retract an edit (its history is kept)."""
    with _editor(ctx) as ed:
        rec = ed.forget(edit_id, namespace=ctx.obj.namespace)
    if as_json:
        _emit_json(rec.to_dict())
    else:
        console.print(f"[yellow]retracted[/yellow] {rec.id}: {rec.statement}")


@app.command()
def history(ctx: typer.Context, edit_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Show the audit trail of an edit (and of the edits it superseded)."""
    with _editor(ctx) as ed:
        events = ed.history(edit_id, namespace=ctx.obj.namespace)
    if as_json:
        _emit_json(events)
        return
    table = Table(title=f"history of {edit_id}")
    for col in ("#", "at", "action", "edit", "actor", "statement", "status"):
        table.add_column(col, overflow="fold")
    for ev in events:
        after = ev["after"] or {}
        table.add_row(str(ev["seq"]), ev["at"][:19], ev["action"], ev["edit_id"], ev["actor"], after.get("statement", ""), after.get("status", ""))
    console.print(table)


@app.command("import")
def import_(ctx: typer.Context, path: str = typer.Argument(..., help="A .jsonl, .json or .csv file of edits."),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Import edits from a file, all or nothing."""
    with _editor(ctx) as ed, Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=err_console, disable=as_json) as bar:
        task = bar.add_task("embedding edits", total=None)
        recs = ed.import_edits(path, progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        _emit_json({"imported": len(recs), "ids": [r.id for r in recs]})
    else:
        console.print(f"[green]imported[/green] {len(recs)} edit(s) into {ctx.obj.namespace}")


@app.command()
def export(ctx: typer.Context, path: str = typer.Argument(..., help="Output .jsonl file."),
           all_: bool = typer.Option(False, "--all", help="Include superseded and retracted edits."),
           every_namespace: bool = typer.Option(False, "--every-namespace")) -> None:
    """Export edits as JSONL."""
    with _editor(ctx) as ed:
        n = ed.export_edits(path, namespace=None if every_namespace else ctx.obj.namespace, include_inactive=all_)
    console.print(f"wrote {n} edit(s) to {path}")


@app.command()
def calibrate(
    ctx: typer.Context,
    data: str = typer.Option(os.path.join("..", "shared", "datasets", "counterfact", "counterfact-train.json"), "--data",
                             help="CounterFact-shaped training file (never the evaluation split)."),
    objective: str = typer.Option("recall@specificity", "--objective", help="recall@specificity | balanced-accuracy | f1"),
    specificity: float = typer.Option(0.98, "--specificity", help="Target specificity for recall@specificity."),
    n_cases: int = typer.Option(2000, "--n-cases"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Calibrate the scope thresholds on training data and save them with the store."""
    with _editor(ctx) as ed:
        cal = ed.calibrate(data, objective=objective, target_specificity=specificity, n_cases=n_cases)
    if as_json:
        _emit_json(cal.to_dict())
    else:
        console.print(f"similarity threshold {cal.threshold:.4f} (recall {cal.recall:.3f}, specificity {cal.specificity:.3f}); "
                      f"relation threshold {cal.relation_threshold:.4f}; saved to store {ctx.obj.store!r}")


@app.command("train-scope")
def train_scope(
    ctx: typer.Context,
    data: str = typer.Option(os.path.join("..", "shared", "datasets", "counterfact", "counterfact-train.json"), "--data",
                             help="CounterFact-shaped training file (never the evaluation split)."),
    minutes: float = typer.Option(15.0, "--minutes", help="Training time budget (2 CPU cores: 15 minutes is about one epoch)."),
    specificity: float = typer.Option(0.98, "--specificity", help="Specificity the threshold must reach on the held-back slice."),
    seed: int = typer.Option(0, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for training (use 1 when another job shares the cores)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train the 'trained' scope checker (a MiniLM cross-encoder) and save it with the store."""
    with _editor(ctx) as ed:
        report = ed.train_scope(data, minutes=minutes, seed=seed, target_specificity=specificity, threads=threads)
        where = ed.scope_model_dir
    if as_json:
        _emit_json(report.to_dict())
    else:
        console.print(f"trained scope model in {where}: threshold {report.threshold:.4f}, held-back recall "
                      f"{report.heldout_recall:.3f} at specificity {report.heldout_specificity:.3f} (AUC {report.heldout_auc:.3f}), "
                      f"{report.steps} steps in {report.train_seconds:.0f} s; use it with --scope trained")


@namespace_app.command("create")
def namespace_create(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Create an empty namespace."""
    with _editor(ctx) as ed:
        ed.memory.create_namespace(name)
    console.print(f"namespace {name} ready")


@namespace_app.command("list")
def namespace_list(ctx: typer.Context) -> None:
    """List namespaces."""
    with _editor(ctx) as ed:
        for ns in ed.memory.namespaces():
            console.print(f"{ns}\t{ed.memory.count(ns)} active edit(s)")


@app.command()
def models(fetch: Optional[str] = typer.Option(None, "--fetch", help="Provision this model into the cache now.")) -> None:
    """List the local models agentedit can provision (and fetch one)."""
    from .provision import cache_dir, ensure_model, known_models

    if fetch:
        path = ensure_model(fetch, progress=_status)
        console.print(f"{fetch}: {path}")
        return
    for name in known_models():
        path = cache_dir() / "models" / f"{name}.gguf"
        console.print(f"{name}\t{'cached' if path.exists() else 'not fetched'}")


@app.command()
def demo(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show edits at work on the embedded local model: answers before and after, and an unrelated question."""
    from .demo import run_demo

    run_demo(ctx.obj, console=console, status=_status, as_json=as_json)


@app.command("eval")
def eval_(
    ctx: typer.Context,
    suite: str = typer.Option("quick", "--suite", help="quick | standard | full, or a path to a suite YAML."),
    datasets: Optional[list[str]] = typer.Option(None, "--dataset", "-d", help="Override the suite's datasets (repeatable)."),
    methods: Optional[list[str]] = typer.Option(None, "--method", help="Override the suite's methods (repeatable)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Cases per dataset."),
    probe_limit: Optional[int] = typer.Option(None, "--probe-limit",
                                              help="Probe only the first N of them (all their edits stay in memory)."),
    kinds: Optional[list[str]] = typer.Option(None, "--kind", help="Run only probes of this kind (repeatable): "
                                               "reliability, generality, locality, portability, multihop."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Sample cases with this seed instead of taking the first ones."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="lifelong | single"),
    scoring: Optional[str] = typer.Option(None, "--scoring", help="generation-match | teacher-forced"),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", help="Parallel requests (API backends)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", envvar="AGENTEDIT_DATA", help="Benchmark folder."),
    out_dir: str = typer.Option(os.path.join("evals", "results"), "--out-dir"),
    run_name: Optional[str] = typer.Option(None, "--run-name", help="Folder name under --out-dir (default: suite-model)."),
    fresh: bool = typer.Option(False, "--fresh", help="Discard earlier results of this run name instead of resuming."),
) -> None:
    """Evaluate methods side by side on the benchmarks; resumes where a crashed run stopped."""
    import shutil

    from .evaluation.runner import Runner
    from .evaluation.suites import config_from_suite, load_suite

    o: Options = ctx.obj
    spec = load_suite(suite)
    cfg = config_from_suite(spec, datasets=datasets or None, methods=methods or None, limit=limit, seed=seed,
                            protocol=protocol, scoring=scoring, concurrency=concurrency, data_dir=data_dir,
                            model=o.model, api_base=o.api_base, probe_kinds=kinds or None, probe_limit=probe_limit)
    if any(m.endswith("trained") for m in cfg.methods):
        cfg.scope_model = o.scope_model_dir()
    name = run_name or f"{cfg.suite}-{cfg.model.split(':')[-1].split('/')[-1]}"
    out = os.path.join(out_dir, name)
    if fresh and os.path.isdir(out):
        shutil.rmtree(out)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console) as bar:
        tasks: dict[str, Any] = {}
        last_line = [0.0]

        def progress(desc: str, done: int, total: int) -> None:
            if desc not in tasks:
                tasks[desc] = bar.add_task(desc, total=total)
            bar.update(tasks[desc], completed=done, total=total)
            # no live bar without a terminal (a log file, CI): a plain line a minute and at each step's end
            if not err_console.is_terminal and (done == total or time.monotonic() - last_line[0] >= 60):
                last_line[0] = time.monotonic()
                err_console.print(f"{time.strftime('%H:%M:%S')} {desc}: {done}/{total}", highlight=False)

        runner = Runner(cfg, out, progress=progress)
        try:
            report = runner.run()
        finally:
            runner.close()
    for ds_name, ds in report["datasets"].items():
        table = Table(title=f"{ds_name} ({ds['n_cases']} cases, {report['protocol']}, {report['scoring']})")
        cols = [c for c in ("reliability", "generality", "locality", "portability", "multihop", "edit_applied", "untouched")
                if any(c in v for v in ds["methods"].values())]
        table.add_column("method")
        for c in cols:
            table.add_column(c, justify="right")
        for m, v in ds["methods"].items():
            table.add_row(m, *[f"{v[c]:.3f}" if isinstance(v.get(c), float) else "" for c in cols])
        console.print(table)
    console.print(f"wrote {out}/results.json, summary.md, {report['cases']} and plots in {report['wall_s']} s")


# -- the HTTP proxy: `serve` and `keys` --------------------------------------------------------------
keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys of the HTTP proxy (`agentedit serve`).")
app.add_typer(keys_app, name="keys")
_KEYS_HELP = "Key file (default: keys.sqlite in the store's folder)."


def _server_module() -> Any:
    from .errors import ConfigError

    try:
        from . import server
    except ImportError as exc:
        raise ConfigError(f"the HTTP proxy needs the server extra ({exc}); install it with: pip install 'agentedit[server]'") from None
    return server


def _key_store(ctx: typer.Context, keys_path: Optional[str]) -> Any:
    server = _server_module()
    o: Options = ctx.obj
    return server.KeyStore(server.ServerConfig(store=o.store, store_dir=o.store_dir, keys_path=keys_path).resolved_keys_path())


@app.command()
def serve(
    ctx: typer.Context,
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Upstream model (litellm 'provider/model' or 'llamacpp:<name>'); default: the global --model."),
    api_base: Optional[str] = typer.Option(None, "--api-base", help="Base URL of an OpenAI-compatible upstream server."),
    store: Optional[str] = typer.Option(None, "--store", help="Edit store name; default: the global --store."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", "-p"),
    chroma_url: Optional[str] = typer.Option(None, "--chroma-url", envvar="AGENTEDIT_CHROMA_URL",
                                             help="A Chroma server (`chroma run`) instead of the embedded index; needed for replicas."),
    no_auth: bool = typer.Option(False, "--no-auth", help="No API keys (every caller is admin); loopback hosts only."),
    keys_path: Optional[str] = typer.Option(None, "--keys", help=_KEYS_HELP),
    upstream_key: Optional[str] = typer.Option(None, "--upstream-key", envvar="AGENTEDIT_UPSTREAM_KEY",
                                               help="API key for the upstream (default: the provider's usual variable)."),
    max_body_mb: float = typer.Option(1.0, "--max-body-mb", help="Largest request body, except batch imports."),
    max_batch_mb: float = typer.Option(8.0, "--max-batch-mb", help="Largest batch-import body."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds per upstream attempt."),
    retries: int = typer.Option(2, "--retries", help="Upstream retries on connection errors, timeouts and 5xx."),
    torch_threads: int = typer.Option(1, "--torch-threads", help="CPU threads for embedding each question (0: torch's default)."),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Serve the OpenAI-compatible edit proxy: point any OpenAI client at http://HOST:PORT/v1."""
    server = _server_module()
    o: Options = ctx.obj
    cfg = server.ServerConfig(model=model or o.model, api_base=api_base or o.api_base, api_key=upstream_key, scope_model=o.scope_model,
                              store=store or o.store, store_dir=o.store_dir, chroma_url=chroma_url, scope=o.scope,
                              namespace=o.namespace, host=host, port=port, auth=not no_auth, keys_path=keys_path,
                              max_body_bytes=int(max_body_mb * 1_000_000), max_batch_bytes=int(max_batch_mb * 1_000_000),
                              timeout=timeout, max_retries=retries, torch_threads=torch_threads or None).validate()
    if cfg.auth:
        keys = server.KeyStore(cfg.resolved_keys_path())
        if not keys.list():
            err_console.print(f"[yellow]no API keys in {keys.path}: every request will get 401.[/yellow] "
                              "Create one with `agentedit keys create --role admin --namespace '*'`.")
        keys.close()
    err_console.print(f"[dim]serving {cfg.model or 'the embedded model'} with store {cfg.store!r} on "
                      f"http://{host}:{port}/v1 (auth {'on' if cfg.auth else 'off'})[/dim]")
    server.serve(cfg, log_level=log_level)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    role: str = typer.Option(..., "--role", help="query (chat, read edits) | write (also change edits) | admin (also /metrics)."),
    namespace: list[str] = typer.Option(..., "--namespace", help="Namespace the key may use (repeatable; '*' for all)."),
    name: str = typer.Option("", "--name", help="A label for the key."),
    keys_path: Optional[str] = typer.Option(None, "--keys", help=_KEYS_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create an API key; the key is printed once and only its hash is kept."""
    store = _key_store(ctx, keys_path)
    try:
        secret, rec = store.create(role=role, namespaces=namespace, name=name)  # type: ignore[arg-type]
    finally:
        store.close()
    if as_json:
        _emit_json({"key": secret, **rec.to_dict()})
    else:
        console.print(f"[green]created[/green] key {rec.id} ({rec.role}; namespaces {', '.join(rec.namespaces)})")
        console.print(secret)
        err_console.print("[dim]store it now: it cannot be shown again[/dim]")


@keys_app.command("list")
def keys_list(ctx: typer.Context, all_: bool = typer.Option(False, "--all", help="Include revoked keys."),
              keys_path: Optional[str] = typer.Option(None, "--keys", help=_KEYS_HELP),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """List API keys (never their secrets)."""
    store = _key_store(ctx, keys_path)
    try:
        keys = store.list(include_revoked=all_)
    finally:
        store.close()
    if as_json:
        _emit_json([k.to_dict() for k in keys])
        return
    table = Table(title=f"{len(keys)} key(s)")
    for col in ("id", "name", "role", "namespaces", "created", "revoked"):
        table.add_column(col)
    for k in keys:
        table.add_row(k.id, k.name, k.role, ", ".join(k.namespaces), k.created_at[:19], (k.revoked_at or "")[:19])
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: str = typer.Argument(..., help="The key's id (from `agentedit keys list`)."),
                keys_path: Optional[str] = typer.Option(None, "--keys", help=_KEYS_HELP)) -> None:
    """Revoke an API key: requests with it get 401 from now on."""
    store = _key_store(ctx, keys_path)
    try:
        rec = store.revoke(key_id)
    finally:
        store.close()
    console.print(f"[yellow]revoked[/yellow] key {rec.id} ({rec.name})")


def main() -> None:
    try:
        app()
    except AgentEditError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
