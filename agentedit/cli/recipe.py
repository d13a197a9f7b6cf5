"""``agentedit train-recipe``: train RECIPE's knowledge sentinel and, for an ``hf:`` model, its prompt encoder, and
save them with the store."""

from __future__ import annotations

from typing import Optional

import typer

from .common import TRAINING_FILE, _editor, _emit_json, app, console, err_console


@app.command("train-recipe")
def train_recipe(
    ctx: typer.Context,
    data: str = typer.Option(TRAINING_FILE, "--data",
                             help="CounterFact-shaped training file (never an evaluation split)."),
    n_cases: int = typer.Option(2000, "--n-cases", help="Sentinel training cases (a tenth held back for the figures)."),
    epochs: int = typer.Option(20, "--epochs", help="Sentinel epochs."),
    encoder: Optional[bool] = typer.Option(None, "--encoder/--no-encoder",
                                           help="Also train the 'recipe' method's prompt encoder for the model "
                                                "(default: when the model's weights are local, hf:...)."),
    encoder_cases: int = typer.Option(200, "--encoder-cases", help="Encoder training cases (a tenth held back)."),
    encoder_epochs: int = typer.Option(3, "--encoder-epochs"),
    prompt_tokens: int = typer.Option(8, "--prompt-tokens", help="Virtual tokens per edit."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Stop the encoder's training after this long."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train the knowledge sentinel (the 'sentinel' scope checker, and the 'recipe' method's retrieval) and, for a
    local model, the 'recipe' method's prompt encoder, on a training file; GPU when there is one."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with _editor(ctx) as ed, Progress(TextColumn("training RECIPE"), BarColumn(), MofNCompleteColumn(),
                                      console=err_console) as bar:
        task = bar.add_task("train", total=None)
        meta = ed.train_recipe(data, n_cases=n_cases, epochs=epochs, seed=seed, encoder=encoder,
                               encoder_cases=encoder_cases, encoder_epochs=encoder_epochs, prompt_tokens=prompt_tokens,
                               minutes=minutes, progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        _emit_json(meta)
        return
    console.print(f"knowledge sentinel in {meta['folder']}: held-back recall {meta['heldout_recall']:.3f}, specificity "
                  f"{meta['heldout_specificity']:.3f} ({meta['steps']} steps, {meta['train_seconds']:.0f} s on "
                  f"{meta['device']}); use it with --scope sentinel")
    enc = meta.get("encoder")
    if enc:
        figures = ", ".join(f"{k.removeprefix('heldout_')} {enc[k]:.3f}" for k in
                            ("heldout_reliability", "heldout_generality", "heldout_locality") if k in enc)
        console.print(f"prompt encoder in {enc['file']}: held-back {figures} ({enc['steps']} steps, "
                      f"{enc['train_seconds']:.0f} s on {enc['device']}); use it with --method recipe")
