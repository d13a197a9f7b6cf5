"""Commands that write and read edits: edit, update, list, forget, history, import, export, namespaces."""

from __future__ import annotations

import sys
from typing import Any, Mapping, Optional

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
    yes: bool = typer.Option(False, "--yes", "-y", help="Record a --statement as parsed even when the parse needs review."),
) -> None:
    """Record an edit (benchmark shape, or --statement: its parse is shown and confirmed when it needs review)."""
    with _editor(ctx) as ed:
        if statement is not None and prompt is None and subject is None and target is None:
            data = ed.parse_statement(statement)
            _confirm_parse(data, yes)
            extra = dict(id=edit_id, aliases=list(alias) or None, target_old=target_old)
            rec = ed.edit_record({**data, **{k: v for k, v in extra.items() if v is not None}})
        else:
            rec = ed.edit(prompt, target, subject=subject, statement=statement, target_old=target_old, id=edit_id,
                          aliases=alias)
    if as_json:
        _emit_json(rec.to_dict())
    else:
        sup = f" (supersedes {rec.supersedes})" if rec.supersedes else ""
        console.print(f"[green]recorded[/green] {rec.id} in {rec.namespace}: {rec.statement}{sup}")
        if statement is not None:
            _show_anatomy(rec)


def _interactive() -> bool:
    return sys.stdin.isatty()


def _confirm_parse(data: Mapping[str, Any], yes: bool) -> None:
    """Show a parse that needs review and ask before recording it (``--yes`` skips; no terminal: refuse)."""
    meta = data.get("metadata") or {}
    if not meta.get("needs_review") or yes:
        return
    parts = (f"subject {data['subject']!r} · relation {data.get('relation')!r} · target {data.get('target_new')!r}"
             if data.get("subject") else "no subject or target")
    how = f"{meta.get('anatomy', 'no parse')}, confidence {meta.get('anatomy_confidence', 0):.2f}"
    if not _interactive():
        raise typer.BadParameter(f"the statement's parse needs review ({meta.get('review_reason')}): {parts} ({how}). "
                                 "Pass --yes to record it as parsed, or give --subject (with the prompt and target) yourself",
                                 param_hint="--statement")
    err_console.print(f"[yellow]needs review[/yellow]: {meta.get('review_reason')}\n  parsed as {parts} ({how})")
    if not typer.confirm("Record it as parsed?", default=False, err=True):
        err_console.print("not recorded; give --subject (with the prompt and target) to say the parts yourself")
        raise typer.Exit(1)


def _show_anatomy(rec: Any) -> None:
    """How a free-text fact was understood, and how to correct it."""
    if rec.subject:
        how = {"model": "by the model", "parser": "by the parser", "rules": "by the offline rules"}.get(
            rec.metadata.get("anatomy", ""), "as given")
        if "anatomy_confidence" in rec.metadata:
            how += f", confidence {rec.metadata['anatomy_confidence']:.2f}"
        console.print(f"  subject [bold]{rec.subject}[/bold] · relation [bold]{rec.relation}[/bold] · target "
                      f"[bold]{rec.target_new}[/bold] ({how}); correct with `agentedit update {rec.id} --subject ... "
                      "--prompt ... --target ...`")
    else:
        console.print(f"  no subject found: the edit applies by similarity only; add one with `agentedit update {rec.id} "
                      "--subject ... --prompt ... --target ...`")
    if rec.metadata.get("needs_review"):
        console.print(f"  [yellow]needs review[/yellow]: {rec.metadata.get('review_reason')} (`agentedit list --review`; "
                      f"`agentedit update {rec.id} --approve` once it is right)")


@app.command()
def update(
    ctx: typer.Context,
    edit_id: str = typer.Argument(..., help="The edit to change."),
    subject: Optional[str] = typer.Option(None, "--subject", "-s"),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="The prompt or question the target answers."),
    target: Optional[str] = typer.Option(None, "--target", help="The new answer."),
    statement: Optional[str] = typer.Option(None, "--statement"),
    alias: list[str] = typer.Option([], "--alias", help="Another name of the subject (repeatable; replaces the list)."),
    approve: bool = typer.Option(False, "--approve", help="Mark the statement's parse as reviewed (also implied by "
                                 "--subject/--prompt/--target)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Change an edit's parts (subject, prompt, target, statement, aliases); the change is logged in its history."""
    changes: dict[str, Any] = {k: v for k, v in dict(subject=subject, prompt=prompt, target_new=target, statement=statement).items()
                               if v is not None}
    with _editor(ctx) as ed:
        meta = dict(ed.get(edit_id, namespace=ctx.obj.namespace).metadata)
        if alias:
            meta["aliases"] = list(alias)
        if meta.get("needs_review") and (approve or subject or prompt or target):
            meta.pop("review_reason", None)
            meta.update(needs_review=False, reviewed=True)
        if meta != ed.get(edit_id, namespace=ctx.obj.namespace).metadata:
            changes["metadata"] = meta
        if not changes:
            raise typer.BadParameter("nothing to change: give --subject, --prompt, --target, --statement, --alias or --approve")
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
    review: bool = typer.Option(False, "--review", help="Only edits whose statement parse waits for review."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List edits (--review: those whose parse needs a look, with the reason)."""
    with _editor(ctx) as ed:
        ns = None if every_namespace else ctx.obj.namespace
        recs = ed.edits(ns, subject=subject, text=text, include_inactive=all_, limit=limit, review=review)
    if as_json:
        _emit_json([r.to_dict() for r in recs])
    elif review:
        table = Table(title=f"{len(recs)} edit(s) waiting for review")
        for col in ("id", "namespace", "subject", "statement", "why"):
            table.add_column(col, overflow="fold")
        for r in recs:
            table.add_row(r.id, r.namespace, r.subject or "", r.statement, str(r.metadata.get("review_reason", "")))
        console.print(table)
        if recs:
            console.print("correct one with `agentedit update ID --subject ... --prompt ... --target ...`, or accept it "
                          "with `agentedit update ID --approve`")
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
