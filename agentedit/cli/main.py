"""The ``agentedit`` entry point: global options, and the command modules registered on the app.

Options left out fall back to the environment (``AGENTEDIT_STORE``, ``AGENTEDIT_MODEL``, ``AGENTEDIT_NAMESPACE``...;
see :data:`agentedit.settings.ENV_VARS`), read in one place by :meth:`~agentedit.settings.Settings.from_env`."""

from __future__ import annotations

import logging
import sys
from typing import Optional

import typer

from ..errors import AgentEditError
from ..scope import CHECKERS, DEFAULT_CHECKER
from ..settings import Settings, offline_defaults
from . import conflicts, db, edits, evaluate, ops, questions, recipe, serve  # noqa: F401  (each registers its commands on the app)
from .common import Options, app, err_console


@app.callback()
def _main(
    ctx: typer.Context,
    store: Optional[str] = typer.Option(None, "--store", help="Name of the edit store (a folder under the store dir)."),
    store_dir: Optional[str] = typer.Option(None, "--store-dir", help="Where stores live (default ./stores)."),
    database_url: Optional[str] = typer.Option(None, "--database-url",
                                               help="PostgreSQL URL (postgresql://user:pass@host/db) for the ledger, keys "
                                                    "and settings, shared by replicas; needs --chroma-url. Default: "
                                                    "$AGENTEDIT_DATABASE_URL, else SQLite files in the store's folder."),
    chroma_url: Optional[str] = typer.Option(None, "--chroma-url", help="A Chroma server (`chroma run`) for the index "
                                                                         "(default: $AGENTEDIT_CHROMA_URL, else embedded)."),
    vector_index: Optional[str] = typer.Option(None, "--vector-index",
                                               help="chroma (default) or pgvector: the index in the --database-url "
                                                    "database, written in the same transaction as the ledger."),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help="litellm 'provider/model', 'llamacpp:<name|file.gguf>', or 'hf:<hub id|dir|file.gguf|name>' for "
                                             "local weights (default: embedded Qwen2.5-Coder-0.5B)."),
    api_base: Optional[str] = typer.Option(None, "--api-base", help="Base URL of an OpenAI-compatible server."),
    namespace: Optional[str] = typer.Option(None, "--namespace", "-n", help="Namespace (tenant) of the edits."),
    scope: Optional[str] = typer.Option(None, "--scope",
                              help="Scope checker: " + ", ".join(CHECKERS) + f" (default {DEFAULT_CHECKER})."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
    method: Optional[str] = typer.Option(None, "--method",
                                         help="Route of new edits: in-context, or rome/memit/ft/alphaedit/grace/wise for hf: models "
                                              "(default: rome for hf: models, in-context otherwise)."),
    scope_model: Optional[str] = typer.Option(None, "--scope-model",
                                              help="Folder of the trained scope model (default: the store's scope-model folder)."),
    stats_corpus: Optional[str] = typer.Option(None, "--stats-corpus",
                                               help="Text file for the ROME/MEMIT/AlphaEdit key statistics of hf: models "
                                                    "(default: text sampled from the model itself)."),
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    offline_defaults()
    ctx.obj = Options(Settings.from_env(model, api_base=api_base, store=store, store_dir=store_dir, namespace=namespace,
                                        database_url=database_url, chroma_url=chroma_url, vector_index=vector_index, scope=scope, method=method, scope_model=scope_model, stats_corpus=stats_corpus))



def main() -> None:
    try:
        app()
    except AgentEditError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
