"""Run llama.cpp's OpenAI-compatible server over a local GGUF model.

:class:`LlamaServer` starts ``python -m llama_cpp.server`` (from the
``llama-cpp-python[server]`` package) as a child process in its own process
group, waits until it answers ``GET /v1/models``, and stops it again::

    with LlamaServer(ensure_model("smollm2-135m-instruct")) as server:
        client = OpenAI(base_url=server.base_url, api_key="unused")
        client.chat.completions.create(model=server.model_alias, messages=[...])

The server applies the chat template stored in the GGUF file unless a
``--chat_format`` is passed through ``extra_args``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from agentedit.errors import BackendError, ConfigError

logger = logging.getLogger(__name__)

__all__ = ["LlamaServer"]

_GGUF_MAGIC = b"GGUF"
# Modules `python -m llama_cpp.server` needs; checked without importing them.
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
_INSTALL_ADVICE = 'Install it with: pip install "llama-cpp-python[server]"'
_LOG_TAIL_LINES = 20


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _client_host(host: str) -> str:
    """The address a client on this machine uses to reach a server bound to ``host``."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


class LlamaServer:
    """A llama.cpp OpenAI-compatible server running as a subprocess.

    Args:
        model_path: a GGUF file (see :func:`agentedit.provision.ensure_model`).
        host: interface to bind; ``127.0.0.1`` keeps the server private to this machine.
        port: TCP port; ``None`` picks a free one.
        n_ctx: context window in tokens.
        n_threads: CPU threads for generation; ``None`` leaves llama.cpp's default.
        model_alias: the model name clients send; defaults to the file stem.
        startup_timeout: seconds to wait for the server to answer before giving up.
        extra_args: further ``llama_cpp.server`` command-line arguments, appended last.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        model_alias: str | None = None,
        startup_timeout: float = 120.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        if n_ctx <= 0:
            raise ConfigError(f"n_ctx must be a positive number of tokens, got {n_ctx}.")
        if n_threads is not None and n_threads <= 0:
            raise ConfigError(f"n_threads must be positive or None (llama.cpp's default), got {n_threads}.")
        if port is not None and not 0 < port < 65536:
            raise ConfigError(f"port must be between 1 and 65535, or None to pick a free one; got {port}.")
        if startup_timeout <= 0:
            raise ConfigError(f"startup_timeout must be positive seconds, got {startup_timeout}.")
        self._model_path = Path(model_path).expanduser()
        self._host = host
        self._port = port
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._model_alias = model_alias or self._model_path.stem
        self._startup_timeout = startup_timeout
        self._extra_args = tuple(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_dir: Path | None = None
        self._log_file: IO[bytes] | None = None
        self._atexit_registered = False

    # ------------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        """The TCP port (chosen now if it was left to pick a free one)."""
        if self._port is None:
            self._port = _free_port(self._host if self._host not in ("", "0.0.0.0") else "127.0.0.1")
        return self._port

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, e.g. ``http://127.0.0.1:8123/v1``."""
        return f"http://{_client_host(self._host)}:{self.port}/v1"

    @property
    def model_alias(self) -> str:
        """The model name to send in requests."""
        return self._model_alias

    @property
    def model_path(self) -> Path:
        return self._model_path

    @property
    def is_running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the running server, else ``None``."""
        return self._proc.pid if self.is_running and self._proc is not None else None

    @property
    def log_path(self) -> Path | None:
        """The server's combined stdout/stderr log while it runs, else ``None``."""
        return self._log_dir / "server.log" if self._log_dir is not None else None

    # ------------------------------------------------------------------ lifecycle

    def command(self) -> list[str]:
        """The command line :meth:`start` runs."""
        cmd = [
            sys.executable, "-m", "agentedit.child_guard", str(os.getpid()), "llama_cpp.server",  # dies with us
            "--model", str(self._model_path),
            "--model_alias", self._model_alias,
            "--host", self._host,
            "--port", str(self.port),
            "--n_ctx", str(self._n_ctx),
        ]  # fmt: skip
        if self._n_threads is not None:
            cmd += ["--n_threads", str(self._n_threads)]
        cmd += self._extra_args
        return cmd

    def start(self) -> LlamaServer:
        """Start the server and wait until it answers; returns ``self``.

        Raises:
            ConfigError: llama-cpp-python[server] is not installed, or the model
                file is missing or not a GGUF file.
            BackendError: the server exited or did not answer within ``startup_timeout``.
        """
        if self.is_running:
            return self
        self._check_installed()
        self._check_model()
        cmd = self.command()
        self._log_dir = Path(tempfile.mkdtemp(prefix="agentedit-llama-"))
        log_path = self._log_dir / "server.log"
        self._log_file = log_path.open("wb")
        logger.info("starting llama.cpp server for %s on %s", self._model_path.name, self.base_url)
        logger.debug("command: %s (log: %s)", cmd, log_path)
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group, so stop() reaches every child
            )
        except OSError as exc:
            self._cleanup_files()
            raise BackendError(f"Could not launch the llama.cpp server ({cmd[0]}): {exc}.") from exc
        try:
            self._wait_ready()
        except _StartupFailed as exc:
            tail = self._log_tail()
            self.stop()
            raise BackendError(self._failure_message(str(exc), tail)) from None
        except BaseException:  # e.g. KeyboardInterrupt: leave no server behind
            self.stop()
            raise
        logger.info("llama.cpp server ready at %s (model %r)", self.base_url, self._model_alias)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM its process group, then SIGKILL after ``timeout`` s. Idempotent."""
        proc, self._proc = self._proc, None
        # Signal only a live (unreaped) leader: a reaped pid could belong to someone else.
        if proc is not None and proc.poll() is None:
            self._signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("llama.cpp server (pid %d) ignored SIGTERM; killing it", proc.pid)
                self._signal_group(proc, signal.SIGKILL)
                proc.wait()
            logger.info("llama.cpp server on port %s stopped", self._port)
        self._cleanup_files()
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"LlamaServer({self._model_path.name!r}, base_url={self.base_url!r}, {state})"

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _check_installed() -> None:
        missing = [name for name in _SERVER_MODULES if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigError(
                f"The llama.cpp server cannot run: module(s) {', '.join(missing)} not installed "
                f"for {sys.executable}. {_INSTALL_ADVICE}"
            )

    def _check_model(self) -> None:
        path = self._model_path
        if not path.is_file():
            raise ConfigError(
                f"Model file {path} does not exist or is not a file. Check the path, or use "
                "agentedit.provision.ensure_model(<name>) to download a known model."
            )
        try:
            with path.open("rb") as fh:
                magic = fh.read(4)
        except OSError as exc:
            raise ConfigError(f"Cannot read model file {path}: {exc}. Check its permissions.") from exc
        if magic != _GGUF_MAGIC:
            raise ConfigError(
                f"{path} is not a GGUF file (first bytes {magic!r}, expected b'GGUF'). "
                "llama.cpp only loads GGUF models: pass a .gguf file."
            )

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self._startup_timeout
        url = f"{self.base_url}/models"
        delay = 0.05
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise _StartupFailed(f"the server exited with status {code} during startup")
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() >= deadline:
                    raise _StartupFailed(f"the server did not answer {url} within {self._startup_timeout:.0f} s")
                time.sleep(delay)
                delay = min(delay * 1.5, 0.5)

    def _failure_message(self, reason: str, tail: str) -> str:
        return (
            f"The llama.cpp server for {self._model_path} failed to start on port {self._port}: {reason}. "
            "Check the log below (a port already in use, too little memory for n_ctx, or an "
            "unsupported model architecture are the usual causes); raise startup_timeout for large models.\n"
            f"--- last {_LOG_TAIL_LINES} log lines ---\n{tail}"
        )

    def _log_tail(self) -> str:
        path = self.log_path
        if self._log_file is not None:
            self._log_file.flush()
        if path is None or not path.exists():
            return "(no log)"
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(empty log)"

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    def _cleanup_files(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None


class _StartupFailed(Exception):
    """Internal: why the server did not become ready."""
