"""Commands that tune: calibrate, train-scope (the eval commands are in ``evaluate.py``)."""

from __future__ import annotations

from typing import Optional

import typer

from .common import TRAINING_FILE, app, console, _emit_json, _editor


@app.command()
def calibrate(
    ctx: typer.Context,
    data: str = typer.Option(TRAINING_FILE, "--data",
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
    data: str = typer.Option(TRAINING_FILE, "--data",
                             help="CounterFact-shaped training file (never the evaluation split)."),
    minutes: float = typer.Option(15.0, "--minutes", help="Training time budget (2 CPU cores: 15 minutes is about one epoch)."),
    specificity: float = typer.Option(0.98, "--specificity", help="Specificity the threshold must reach on the held-back slice."),
    seed: int = typer.Option(0, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for training (use 1 when another job shares the cores)."),
    kind: str = typer.Option("encoder", "--kind", help="encoder: tune the sentence encoder that scores relations (about "
                             "5 minutes on 2 cores); cross-encoder: a MiniLM pair classifier."),
    steps: int = typer.Option(400, "--steps", help="Training batches of the encoder kind."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train the 'trained' scope checker and save it with the store."""
    with _editor(ctx) as ed:
        report = ed.train_scope(data, minutes=minutes, seed=seed, target_specificity=specificity, threads=threads,
                                kind=kind, steps=steps)
        where = ed.scope_model_dir
    if as_json:
        _emit_json(report.to_dict())
    else:
        console.print(f"trained scope model in {where}: threshold {report.threshold:.4f}, held-back recall "
                      f"{report.heldout_recall:.3f} at specificity {report.heldout_specificity:.3f} (AUC {report.heldout_auc:.3f}), "
                      f"{report.steps} steps in {report.train_seconds:.0f} s; use it with --scope trained")
