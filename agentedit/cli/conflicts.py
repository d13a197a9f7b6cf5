"""``agentedit conflicts``: list the possible conflicts between edits, and ``conflicts resolve ID --keep ...``."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from .common import _editor, _emit_json, app, console

conflicts_app = typer.Typer(invoke_without_command=True, no_args_is_help=False,
                            help="Possible conflicts between edits (same subject, maybe the same relation): list, resolve.")
app.add_typer(conflicts_app, name="conflicts")


def _table(found: list[Any], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for col in ("id", "new edit", "other edit", "score", "reason", "status"):
        table.add_column(col, overflow="fold")
    for c in found:
        status = c.status if c.resolution is None else f"{c.status} ({c.resolution})"
        table.add_row(c.id, c.edit_id, c.other_id, f"{c.score:.3f}", c.reason, status)
    return table


@conflicts_app.callback()
def list_conflicts(ctx: typer.Context,
                   all_: bool = typer.Option(False, "--all", help="Include resolved conflicts."),
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """List the open conflicts of the namespace (a write found an active edit that may state the same fact)."""
    if ctx.invoked_subcommand is not None:
        return
    with _editor(ctx) as ed:
        found = ed.conflicts(ctx.obj.namespace, include_resolved=all_)
    if as_json:
        _emit_json([c.to_dict() for c in found])
    elif not found:
        console.print(f"no open conflicts in {ctx.obj.namespace}")
    else:
        console.print(_table(found, f"conflicts in {ctx.obj.namespace}"))
        console.print("settle one with `agentedit conflicts resolve ID --keep new|old|both`")


@conflicts_app.command("resolve")
def resolve(ctx: typer.Context, conflict_id: str = typer.Argument(..., help="The conflict's id (`agentedit conflicts`)."),
            keep: str = typer.Option(..., "--keep", help="'new' or 'old' (or an edit id): the other is superseded; "
                                                         "'both': both stay active."),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Settle a conflict: keep the newer edit, the older one, or both."""
    with _editor(ctx) as ed:
        c = ed.resolve_conflict(conflict_id, keep, namespace=ctx.obj.namespace)
    if as_json:
        _emit_json(c.to_dict())
    else:
        console.print(f"[green]resolved[/green] {c.id}: {c.resolution}")
