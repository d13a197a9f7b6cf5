"""Local HTTP services as child processes: ``agentedit serve`` itself, or a ``chroma run`` index server.

For scripts, benchmarks and tests on one machine::

    with proxy_process(store="team", model="openai/m", api_base=upstream, extra=("--no-auth",)) as proxy:
        httpx.get(proxy.base_url + "/healthz")
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from ..errors import AgentEditError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ChildServer:
    """A command serving HTTP, run as a child process; ready once ``health_url`` answers 200.

    Output goes to ``log_path`` (quoted in the error if the process dies or never gets ready).
    """

    def __init__(self, command: Sequence[str], *, base_url: str, health_path: str = "/healthz",
                 log_path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
                 cwd: str | os.PathLike[str] | None = None) -> None:
        self.command = list(command)
        self.base_url = base_url
        self.health_url = base_url + health_path
        self.log_path = Path(log_path) if log_path else None
        self._env = {**os.environ, "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})}
        self._cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n" + self.log_path.read_text("utf-8", errors="replace")[-3000:]

    def start(self, timeout: float = 300.0) -> "ChildServer":
        """Launch and wait until ready."""
        return self.launch().wait_ready(timeout)

    def launch(self) -> "ChildServer":
        """Start the process without waiting (launch several, then :meth:`wait_ready` on each)."""
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self._proc = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, env=self._env, cwd=self._cwd)
        return self

    def wait_ready(self, timeout: float = 300.0) -> "ChildServer":
        if self._proc is None:
            raise AgentEditError("the process was never launched; call start() or launch() first")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise AgentEditError(f"{self.command[0]} exited with status {self._proc.returncode} before it was ready{self._tail()}")
            try:
                if httpx.get(self.health_url, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AgentEditError(f"{self.health_url} did not answer within {timeout:g}s{self._tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL after ``timeout`` seconds."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (what a crash looks like)."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGKILL)
            self._proc.wait()

    def __enter__(self) -> "ChildServer":
        return self.start() if self._proc is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def proxy_process(*, store: str, model: str, api_base: str | None = None, store_dir: str | os.PathLike[str] | None = None,
                  chroma_url: str | None = None, scope: str | None = None, port: int | None = None, extra: Sequence[str] = (),
                  log_path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> ChildServer:
    """``agentedit serve`` on 127.0.0.1 (a free port unless given), not started yet; ``env`` adds to its environment."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "agentedit", *(["--store-dir", str(store_dir)] if store_dir else []),
           *(["--scope", scope] if scope else []), "serve",
           "--store", store, "--model", model, "--port", str(port), "--log-level", "warning"]
    if api_base:
        cmd += ["--api-base", api_base]
    if chroma_url:
        cmd += ["--chroma-url", chroma_url]
    return ChildServer([*cmd, *extra], base_url=f"http://127.0.0.1:{port}", log_path=log_path, env=env)


def chroma_process(path: str | os.PathLike[str], *, port: int | None = None,
                   log_path: str | os.PathLike[str] | None = None) -> ChildServer:
    """``chroma run`` (from the chromadb package) on 127.0.0.1, persisting under ``path``; not started yet."""
    port = port or free_port()
    exe = Path(sys.executable).with_name("chroma")
    cmd = [str(exe) if exe.exists() else "chroma", "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    return ChildServer(cmd, base_url=f"http://127.0.0.1:{port}", health_path="/api/v2/heartbeat", log_path=log_path)
