"""``agentedit train-recipe``: train RECIPE's knowledge sentinel and save it with the store."""

from __future__ import annotations

import typer

from .common import TRAINING_FILE, _editor, _emit_json, app, console, err_console


@app.command("train-recipe")
def train_recipe(
    ctx: typer.Context,
    data: str = typer.Option(TRAINING_FILE, "--data",
                             help="CounterFact-shaped training file (never an evaluation split)."),
    n_cases: int = typer.Option(2000, "--n-cases", help="Training cases (a tenth held back for the reported figures)."),
    epochs: int = typer.Option(20, "--epochs"),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train the knowledge sentinel (the 'sentinel' scope checker) on a training file; GPU when there is one."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with _editor(ctx) as ed, Progress(TextColumn("training the sentinel"), BarColumn(), MofNCompleteColumn(),
                                      console=err_console) as bar:
        task = bar.add_task("train", total=None)
        meta = ed.train_recipe(data, n_cases=n_cases, epochs=epochs, seed=seed,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        _emit_json(meta)
    else:
        console.print(f"knowledge sentinel in {meta['folder']}: held-back recall {meta['heldout_recall']:.3f}, specificity "
                      f"{meta['heldout_specificity']:.3f} ({meta['steps']} steps, {meta['train_seconds']:.0f} s on "
                      f"{meta['device']}); use it with --scope sentinel")
