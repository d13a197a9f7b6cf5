"""Settings of the edit proxy (``agentedit serve``)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..memory.store import DEFAULT_NAMESPACE, store_root
from ..scope import DEFAULT_CHECKER

KEYS_FILE = "keys.sqlite"


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ServerConfig:
    """Everything ``create_app`` needs; the CLI fills it from its options.

    ``model``/``api_base``/``api_key`` name the upstream model (a litellm ``provider/model`` or
    ``llamacpp:<name>``). ``auth=False`` (``--no-auth``) serves every request as an admin of every
    namespace and is refused unless ``host`` is a loopback address. Request namespaces default to
    ``namespace`` when the API key does not pin one. ``torch_threads`` caps the CPU threads of the query
    embedder in :func:`~agentedit.server.serve` (one per request avoids oversubscribing the cores when requests
    run side by side; ``None`` leaves torch's default).
    """

    model: str | None = None
    api_base: str | None = None
    api_key: str | None = None
    store: str = "default"
    store_dir: str | None = None
    chroma_url: str | None = None
    scope: str = DEFAULT_CHECKER
    scope_model: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    host: str = "127.0.0.1"
    port: int = 8000
    auth: bool = True
    keys_path: str | None = None
    max_body_bytes: int = 1_000_000
    max_batch_bytes: int = 8_000_000
    timeout: float = 60.0
    max_retries: int = 2
    torch_threads: int | None = 1

    def validate(self) -> "ServerConfig":
        if not self.auth and not is_loopback(self.host):
            raise ConfigError(f"--no-auth is only allowed on a loopback address (127.0.0.1, ::1), not {self.host!r}; "
                              "create an API key with `agentedit keys create` and serve with auth instead")
        if self.max_body_bytes < 1024 or self.max_batch_bytes < self.max_body_bytes:
            raise ConfigError("max_body_bytes must be at least 1024 and max_batch_bytes at least max_body_bytes")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port} is out of range 1-65535")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ConfigError("torch_threads must be at least 1 (or None for torch's default)")
        if self.timeout <= 0 or self.max_retries < 0:
            raise ConfigError("timeout must be positive and max_retries at least 0")
        return self

    def resolved_keys_path(self) -> Path:
        """``keys_path``, else ``keys.sqlite`` in the store's folder (shared by replicas of one store)."""
        return Path(self.keys_path) if self.keys_path else store_root(self.store_dir) / self.store / KEYS_FILE
