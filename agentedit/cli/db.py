"""The system of record on PostgreSQL: ``db status`` and ``db upgrade`` (versioned schema migrations)."""

from __future__ import annotations

import typer

from ..errors import ConfigError
from .common import Options, _emit_json, app, console

db_app = typer.Typer(no_args_is_help=True, help="The store's PostgreSQL schema (--database-url): status and migrations.")
app.add_typer(db_app, name="db")


def _url(o: Options) -> str:
    if not o.database_url:
        raise ConfigError("no PostgreSQL database given: pass --database-url postgresql://... (or set "
                          "AGENTEDIT_DATABASE_URL); SQLite ledgers migrate themselves when opened")
    return o.database_url


@db_app.command("status")
def db_status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """The store's schema version in the database, and the version this agentedit needs."""
    from ..db import postgres_schema as schema_pg
    from ..db import PostgresDatabase

    o: Options = ctx.obj
    db = PostgresDatabase(_url(o), o.store, wait_s=10)
    try:
        out = {"database": db.where, "schema": db.schema, "version": schema_pg.current_version(db),
               "needed": schema_pg.SCHEMA_VERSION}
    finally:
        db.close()
    out["up_to_date"] = out["version"] == out["needed"]
    if as_json:
        _emit_json(out)
    else:
        state = "up to date" if out["up_to_date"] else "needs `agentedit db upgrade`"
        console.print(f"store {o.store!r}: schema {out['schema']} at {out['database']} is at version {out['version']} "
                      f"(this agentedit needs {out['needed']}): {state}")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Apply the missing migrations to the store's schema (each in one transaction; replicas may keep running)."""
    from ..db import postgres_schema as schema_pg
    from ..db import PostgresDatabase

    o: Options = ctx.obj
    db = PostgresDatabase(_url(o), o.store, wait_s=10)
    try:
        applied = schema_pg.upgrade(db)
        version = schema_pg.current_version(db)
    finally:
        db.close()
    if as_json:
        _emit_json({"applied": applied, "version": version})
    else:
        console.print(f"applied migration(s) {', '.join(map(str, applied))}; now at version {version}" if applied
                      else f"already at version {version}; nothing to do")
