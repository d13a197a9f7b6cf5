"""Settings of the edit proxy (``agentedit serve``)."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ConfigError
from ..settings import Settings, SettingsViews

if TYPE_CHECKING:
    from .auth import KeyStore

KEYS_FILE = "keys.sqlite"
_HOST_PATTERN = re.compile(r"\*|(\*\.)?[a-z0-9]([a-z0-9_.-]*[a-z0-9])?|\[[0-9a-f:.]+\]")


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServerConfig(SettingsViews):
    """Everything ``create_app`` needs: the Editor's :class:`~agentedit.settings.Settings` plus the server's own.

    Flat setting names (``model=``, ``api_base=``, ``store=``, ``scope=``...) are accepted as for ``Editor``;
    the server sends the client's generation parameters as given (no temperature or max_tokens of its own).
    ``auth=False`` (``--no-auth``) serves every request as an admin of every namespace and is refused unless
    ``host`` is a loopback address; it then answers only requests whose ``Host`` header names a loopback host
    (DNS rebinding). ``allowed_hosts`` (``--allowed-hosts``) lists the other host names accepted in ``Host``
    (``*.example.com``, ``*`` for any); without it, any is accepted when auth is on. Request namespaces default
    to ``settings.store.namespace`` when the API key does not pin one. ``torch_threads`` caps the CPU threads of
    the query embedder in :func:`~agentedit.server.serve` (one per request avoids oversubscribing the cores when
    requests run side by side; ``None`` leaves torch's default).
    """

    def __init__(self, settings: Settings | None = None, *, host: str = "127.0.0.1", port: int = 8000, auth: bool = True,
                 keys_path: str | None = None, max_body_bytes: int = 1_000_000, max_batch_bytes: int = 8_000_000,
                 torch_threads: int | None = 1, allowed_hosts: Sequence[str] | None = None, **flat: Any) -> None:
        base = settings or Settings.from_env(flat.pop("model", None), api_base=flat.pop("api_base", None),
                                             temperature=None, max_tokens=None)
        self.settings = base.replace(**flat)
        if settings is None:  # pass the client's parameters through untouched
            self.settings = dataclasses.replace(self.settings, model=dataclasses.replace(
                self.settings.model, temperature=None, max_tokens=None))
        self.host, self.port, self.auth, self.keys_path = host, port, auth, keys_path
        self.max_body_bytes, self.max_batch_bytes, self.torch_threads = max_body_bytes, max_batch_bytes, torch_threads
        given = [allowed_hosts] if isinstance(allowed_hosts, str) else allowed_hosts
        self.allowed_hosts = [h.strip().lower() for item in given for h in item.split(",") if h.strip()] \
            if given is not None else None

    def validate(self) -> "ServerConfig":
        if not self.auth and not is_loopback(self.host):
            raise ConfigError(f"--no-auth is only allowed on a loopback address (127.0.0.1, ::1), not {self.host!r}; "
                              "create an API key with `agentedit keys create` and serve with auth instead")
        if self.max_body_bytes < 1024 or self.max_batch_bytes < self.max_body_bytes:
            raise ConfigError("max_body_bytes must be at least 1024 and max_batch_bytes at least max_body_bytes")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port} is out of range 1-65535")
        bad = [h for h in self.allowed_hosts or () if not _HOST_PATTERN.fullmatch(h)]
        if bad:
            raise ConfigError(f"--allowed-hosts: {', '.join(map(repr, bad))} is not a host name (give names such as "
                              "api.example.com, *.example.com or *, without scheme or port)")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ConfigError("torch_threads must be at least 1 (or None for torch's default)")
        self.settings.validate()
        return self

    def resolved_keys_path(self) -> Path:
        """``keys_path``, else ``keys.sqlite`` in the store's folder (shared by replicas of one store)."""
        return Path(self.keys_path) if self.keys_path else self.settings.store.folder() / KEYS_FILE

    def keys_target(self) -> "Path | str":
        """Where the API keys are: ``keys_path`` if given, else the store's PostgreSQL database if it has one, else
        :meth:`resolved_keys_path`."""
        if self.keys_path is None and self.settings.store.database_url:
            return self.settings.store.database_url
        return self.resolved_keys_path()

    def open_keys(self) -> "KeyStore":
        from .auth import KeyStore

        return KeyStore(self.keys_target(), store=self.settings.store.name)


def check_workers(cfg: ServerConfig, workers: int) -> None:
    """Refuse a worker count the store or the model cannot be shared by, saying what to use instead."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if workers == 1:
        return
    store = cfg.settings.store
    if not store.chroma_url and store.vector_index != "pgvector":
        raise ConfigError(f"--workers {workers} needs an index every worker shares: add --chroma-url (a `chroma run` "
                          "server) or --database-url ... --vector-index pgvector; the embedded index belongs to one process")
    kind = cfg.settings.model.spec.kind
    if kind != "api":
        raise ConfigError(f"--workers {workers} serves API models only: {cfg.settings.model.spec.name!r} runs inside the "
                          "process (each worker would load its own copy); serve it with one worker, or run its server "
                          "apart (e.g. llama.cpp's) and pass --model openai/<name> --api-base <its URL>")
