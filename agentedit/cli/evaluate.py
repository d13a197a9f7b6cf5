"""The ``eval`` commands: run a suite (``agentedit eval``), re-render a finished run (``eval report``) and compare
finished runs (``eval compare``)."""

from __future__ import annotations

import os
import time
from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .common import Options, app, console, err_console

eval_app = typer.Typer(help="Evaluate methods side by side on benchmarks; `eval report` and `eval compare` work on "
                            "finished run folders without calling a model.")
app.add_typer(eval_app, name="eval")


def _print_tables(report: dict[str, Any]) -> None:
    from ..evaluation.report import cell

    for ds_name, ds in report["datasets"].items():
        table = Table(title=f"{ds_name} ({ds['n_cases']} cases, protocol {report['protocol']}, {report['scoring']})")
        cols = [c for c in ("reliability", "generality", "locality", "portability", "multihop", "edit_applied", "untouched")
                if any(c in v for v in ds["methods"].values())]
        table.add_column("method")
        for c in cols:
            table.add_column(c, justify="right")
        cis = ds.get("intervals") or {}
        for m, v in ds["methods"].items():
            table.add_row(m, *[cell(v.get(c), cis.get(m, {}).get(c), ci_digits=2) for c in cols])
        console.print(table)


@eval_app.callback(invoke_without_command=True)
def eval_(
    ctx: typer.Context,
    suite: str = typer.Option("quick", "--suite", help="quick | standard | full | multihop | easyedit-ike | blackbox, or a path to a suite YAML."),
    datasets: Optional[list[str]] = typer.Option(None, "--dataset", "-d", help="Override the suite's datasets (repeatable)."),
    dataset_file: Optional[str] = typer.Option(None, "--dataset-file",
                                               help="A benchmark file to evaluate on, read by the declaration --schema."),
    schema: Optional[str] = typer.Option(None, "--schema", help="Declaration for --dataset-file: a shipped name "
                                         "(zsre-mend, mquake-cf-3k, mquake-t, rippleedits, wiki_recent, ...) or a YAML file."),
    methods: Optional[list[str]] = typer.Option(None, "--method", help="Override the suite's methods (repeatable)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Cases per dataset."),
    probe_limit: Optional[int] = typer.Option(None, "--probe-limit",
                                              help="Probe only the first N of them (all their edits stay in memory)."),
    kinds: Optional[list[str]] = typer.Option(None, "--kind", help="Run only probes of this kind (repeatable): "
                                               "reliability, generality, locality, portability, multihop."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Sample cases with this seed instead of taking the first ones."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="lifelong | single | easyedit-knowedit | "
                                           "rome-counterfact | wise-lifelong | mquake-multihop"),
    scoring: Optional[str] = typer.Option(None, "--scoring", help="generation-match | teacher-forced"),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", help="Parallel requests (API backends)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Benchmark folder (default $AGENTEDIT_DATA, else ../shared/datasets)."),
    out_dir: str = typer.Option(os.path.join("evals", "results"), "--out-dir"),
    run_name: Optional[str] = typer.Option(None, "--run-name", help="Folder name under --out-dir (default: suite-model)."),
    fresh: bool = typer.Option(False, "--fresh", help="Discard earlier results of this run name instead of resuming."),
) -> None:
    """Evaluate methods side by side on the benchmarks; resumes where a crashed run stopped."""
    if ctx.invoked_subcommand is not None:
        return
    import shutil

    from ..errors import ConfigError
    from ..evaluation.loaders import register_file
    from ..evaluation.runner import Runner
    from ..evaluation.suites import config_from_suite, load_suite

    o: Options = ctx.obj
    if (dataset_file is None) != (schema is None):
        raise ConfigError("--dataset-file and --schema go together: the file, and the declaration that reads it")
    if dataset_file is not None:
        added = register_file(dataset_file, schema)  # type: ignore[arg-type]
        datasets = [*(d for d in datasets or [] if d != added), added]  # the file, with any --dataset given too
    spec = load_suite(suite)
    if protocol is not None and scoring is None and "scoring" in spec:
        spec = {k: v for k, v in spec.items() if k != "scoring"}  # a named protocol brings its own scoring
    cfg = config_from_suite(spec, datasets=datasets or None, methods=methods or None, limit=limit, seed=seed,
                            protocol=protocol, scoring=scoring, concurrency=concurrency, data_dir=data_dir,
                            model=o.model, api_base=o.settings.model.spec.api_base, probe_kinds=kinds or None, probe_limit=probe_limit)
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
    _print_tables(report)
    console.print(f"wrote {out}/results.json, summary.md, {report['cases']} and plots in {report['wall_s']} s")


@eval_app.command("report")
def report_(
    run: str = typer.Argument(..., help="A finished run folder (evals/results/<run-name>)."),
    out: Optional[str] = typer.Option(None, "--out", help="Write the report here instead of into the run folder."),
) -> None:
    """Re-render a run's results.json, summary.md and plots from its stored rows, without any model call."""
    from ..evaluation.compare import rerender

    report = rerender(run, out)
    _print_tables(report)
    console.print(f"wrote {out or run}/results.json, summary.md and plots")


@eval_app.command("compare")
def compare_(
    runs: list[str] = typer.Argument(..., help="Two or more finished run folders measured under one protocol."),
    out: Optional[str] = typer.Option(None, "--out", help="Folder for compare.json, compare.md and plots."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap and permutation draws."),
) -> None:
    """One table over finished runs: metrics with 95% intervals, and paired differences where runs share cases."""
    from ..evaluation.compare import compare, compare_markdown

    result = compare(runs, out, seed=seed)
    typer.echo(compare_markdown(result))
    if out:
        console.print(f"wrote {out}/compare.json, compare.md and plots")
