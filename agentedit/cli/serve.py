"""The HTTP proxy and its API keys: serve, keys create|list|revoke."""

from __future__ import annotations

import dataclasses
from typing import Optional

import typer

from ..db import set_connect_wait
from ..settings import env
from rich.table import Table

from .common import app, keys_app, console, err_console, Options, _emit_json, _server_module, _key_store, _KEYS_HELP


@app.command()
def serve(
    ctx: typer.Context,
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Upstream model (litellm 'provider/model' or 'llamacpp:<name>'); default: the global --model."),
    api_base: Optional[str] = typer.Option(None, "--api-base", help="Base URL of an OpenAI-compatible upstream server."),
    store: Optional[str] = typer.Option(None, "--store", help="Edit store name; default: the global --store."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", "-p"),
    chroma_url: Optional[str] = typer.Option(None, "--chroma-url",
                                             help="A Chroma server (`chroma run`) instead of the embedded index; needed for replicas."),
    database_url: Optional[str] = typer.Option(None, "--database-url",
                                               help="PostgreSQL URL for the ledger, keys and settings, shared by replicas "
                                                    "(needs --chroma-url); default: the global --database-url."),
    vector_index: Optional[str] = typer.Option(None, "--vector-index",
                                               help="chroma (default) or pgvector (the index in the --database-url database)."),
    database_wait: Optional[str] = typer.Option(None, "--database-wait",
                                                help="Seconds to keep retrying an unreachable database at start "
                                                     "(default: $AGENTEDIT_DATABASE_WAIT, else 'forever')."),
    no_auth: bool = typer.Option(False, "--no-auth", help="No API keys (every caller is admin); loopback hosts only, "
                                                           "and only requests addressed to a loopback name (Host)."),
    allowed_hosts: Optional[list[str]] = typer.Option(
        None, "--allowed-hosts", help="Host names accepted in the Host header besides 127.0.0.1, localhost and [::1] "
                                      "(comma-separated or repeated; *.example.com, * for any). Default: any with auth, "
                                      "none with --no-auth."),
    keys_path: Optional[str] = typer.Option(None, "--keys", help=_KEYS_HELP),
    upstream_key: Optional[str] = typer.Option(None, "--upstream-key",
                                               help="API key for the upstream (default: the provider's usual variable)."),
    max_body_mb: float = typer.Option(1.0, "--max-body-mb", help="Largest request body, except batch imports."),
    max_batch_mb: float = typer.Option(8.0, "--max-batch-mb", help="Largest batch-import body."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds per upstream attempt."),
    retries: int = typer.Option(2, "--retries", help="Upstream retries on connection errors, timeouts and 5xx."),
    torch_threads: int = typer.Option(1, "--torch-threads", help="CPU threads for embedding each question (0: torch's default)."),
    workers: int = typer.Option(1, "--workers", help="Proxy processes on the one port (about a core each); more than 1 "
                                                      "needs --chroma-url or --vector-index pgvector and an API model."),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Serve the OpenAI-compatible edit proxy: point any OpenAI client at http://HOST:PORT/v1."""
    server = _server_module()
    o: Options = ctx.obj
    # this process is the server: a replica started before its database waits for it, saying so in the log
    set_connect_wait(database_wait or env("AGENTEDIT_DATABASE_WAIT") or "forever")  # a bad value fails here
    upstream_key = upstream_key or env("AGENTEDIT_UPSTREAM_KEY")
    settings = o.settings.replace(model=model, api_base=api_base, api_key=upstream_key, store=store, chroma_url=chroma_url,
                                  database_url=database_url, vector_index=vector_index, timeout=timeout, max_retries=retries, temperature=None, max_tokens=None)
    settings = dataclasses.replace(settings, model=dataclasses.replace(settings.model, temperature=None, max_tokens=None))
    cfg = server.ServerConfig(settings, host=host, port=port, auth=not no_auth, keys_path=keys_path,
                              max_body_bytes=int(max_body_mb * 1_000_000), max_batch_bytes=int(max_batch_mb * 1_000_000),
                              torch_threads=torch_threads or None, allowed_hosts=allowed_hosts or None).validate()
    server.check_workers(cfg, workers)  # before anything is opened or bound
    if cfg.auth:
        keys = cfg.open_keys()
        if not keys.list():
            err_console.print(f"[yellow]no API keys in {keys.path}: every request will get 401.[/yellow] "
                              "Create one with `agentedit keys create --role admin --namespace '*'`.")
        keys.close()
    err_console.print(f"[dim]serving {cfg.model or 'the embedded model'} with store {cfg.store!r} on "
                      f"http://{host}:{port}/v1 (auth {'on' if cfg.auth else 'off'}"
                      f"{f', {workers} workers' if workers > 1 else ''})[/dim]")
    server.serve(cfg, log_level=log_level, workers=workers)


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
