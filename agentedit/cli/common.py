"""What every command shares: the Typer apps, consoles, global options and the Editor they open."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..settings import Settings, SettingsViews

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Change what an LLM knows, without retraining it.")
namespace_app = typer.Typer(no_args_is_help=True, help="Manage namespaces of a store.")
app.add_typer(namespace_app, name="namespace")
console = Console()
err_console = Console(stderr=True)


@dataclass
class Options(SettingsViews):
    """The global options, as the Editor's settings (the environment read once, by ``Settings.from_env``)."""

    settings: Settings

    def scope_model_dir(self) -> str:
        """``--scope-model`` if given, else the store's own ``scope-model`` folder."""
        return str(self.settings.scope.model_folder(self.settings.store.folder()))


#: the default ``--data`` of the commands that train or calibrate on a CounterFact-shaped training file
TRAINING_FILE = os.path.join("..", "shared", "datasets", "counterfact", "counterfact-train.json")


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _status(msg: str) -> None:
    err_console.print(f"[dim]… {msg}[/dim]")


@contextmanager
def _editor(ctx: typer.Context, **kw: Any) -> Iterator[Any]:
    from ..editor import Editor

    o: Options = ctx.obj
    ed = Editor(settings=o.settings.replace(**kw), progress=_status)
    try:
        yield ed
    finally:
        ed.close()


def _records_table(records: list[Any], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for col in ("id", "namespace", "subject", "statement", "status", "created"):
        table.add_column(col, overflow="fold")
    for r in records:
        table.add_row(r.id, r.namespace, r.subject or "", r.statement, r.status, r.created_at[:19])
    return table


keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys of the HTTP proxy (`agentedit serve`).")
app.add_typer(keys_app, name="keys")
_KEYS_HELP = "Key file (default: the store's database with --database-url, else keys.sqlite in the store's folder)."


def _server_module() -> Any:
    from ..errors import ConfigError

    try:
        from .. import server
    except ImportError as exc:
        raise ConfigError(f"the HTTP proxy needs the server extra ({exc}); install it with: pip install 'agentedit[server]'") from None
    return server


def _key_store(ctx: typer.Context, keys_path: Optional[str]) -> Any:
    server = _server_module()
    o: Options = ctx.obj
    return server.ServerConfig(store=o.store, store_dir=o.store_dir, database_url=o.database_url,
                               keys_path=keys_path).open_keys()
