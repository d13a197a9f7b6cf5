"""Commands that write and read edits: edit, update, list, forget, history, import, export, namespaces."""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .common import app, namespace_app, console, err_console, _emit_json, _editor, _records_table


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
            meta = dict(ed.get(edit_id, namespace=ctx.obj.namespace).metadata)
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



@namespace_app.command("create")
def namespace_create(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Create an empty namespace."""
    with _editor(ctx) as ed:
        ed.create_namespace(name)
    console.print(f"namespace {name} ready")


@namespace_app.command("list")
def namespace_list(ctx: typer.Context) -> None:
    """List namespaces."""
    with _editor(ctx) as ed:
        for ns in ed.namespaces():
            console.print(f"{ns}\t{ed.count(ns)} active edit(s)")
