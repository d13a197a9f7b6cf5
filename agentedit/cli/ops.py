"""Commands that tune and measure: calibrate, train-scope, eval."""

from __future__ import annotations

import os
import time
from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .common import app, console, err_console, Options, _emit_json, _editor


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



@app.command("eval")
def eval_(
    ctx: typer.Context,
    suite: str = typer.Option("quick", "--suite", help="quick | standard | full | multihop | easyedit-ike | blackbox, or a path to a suite YAML."),
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
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Benchmark folder (default $AGENTEDIT_DATA, else ../shared/datasets)."),
    out_dir: str = typer.Option(os.path.join("evals", "results"), "--out-dir"),
    run_name: Optional[str] = typer.Option(None, "--run-name", help="Folder name under --out-dir (default: suite-model)."),
    fresh: bool = typer.Option(False, "--fresh", help="Discard earlier results of this run name instead of resuming."),
) -> None:
    """Evaluate methods side by side on the benchmarks; resumes where a crashed run stopped."""
    import shutil

    from ..evaluation.runner import Runner
    from ..evaluation.suites import config_from_suite, load_suite

    o: Options = ctx.obj
    spec = load_suite(suite)
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
