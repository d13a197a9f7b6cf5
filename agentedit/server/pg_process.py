"""A throwaway PostgreSQL server on 127.0.0.1, for tests, benchmarks and trying replicas on one machine.

It runs the server binaries of the machine's PostgreSQL (Debian's ``postgresql`` package puts them under
``/usr/lib/postgresql/VERSION/bin``; ``AGENTEDIT_PG_BIN`` names another folder). PostgreSQL refuses to run as
root, so under root it runs as the ``postgres`` user the package creates. Authentication is ``trust`` on
loopback only: never use this for data that matters.

    with LocalPostgres() as pg:
        EditMemory("team", database_url=pg.url, chroma_url=...)
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from ..errors import AgentEditError
from ..settings import env
from .process import free_port

logger = logging.getLogger(__name__)


def pgvector_binaries() -> Path:
    """A PostgreSQL build that has the pgvector extension: the one inside the ``pgserver`` wheel (PyPI), copied once
    to a folder every user can read (the server may not run as root, and root's home is closed to others)."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")  # found without importing it: only its files are used
    if spec is None or not spec.submodule_search_locations:
        raise AgentEditError("pgvector needs a PostgreSQL build that ships it: `pip install pgserver` (its wheel carries "
                             "PostgreSQL 16 with pgvector), or set AGENTEDIT_PG_BIN to the bin folder of one")
    package = Path(list(spec.submodule_search_locations)[0])
    target = Path(tempfile.gettempdir()) / f"agentedit-pgvector-{package.stat().st_mtime_ns}"
    if not (target / "pgserver" / "pginstall" / "bin" / "postgres").exists():
        # the binaries find their libraries at $ORIGIN/../../../pgserver.libs: keep that layout
        partial = Path(tempfile.mkdtemp(prefix="agentedit-pgvector-copy-"))
        shutil.copytree(package / "pginstall", partial / "pgserver" / "pginstall", symlinks=True)
        libs = package.parent / "pgserver.libs"
        if libs.is_dir():
            shutil.copytree(libs, partial / "pgserver.libs", symlinks=True)
        for folder, _dirs, _files in os.walk(partial):
            os.chmod(folder, 0o755)
        try:
            os.rename(partial, target)
        except OSError:  # another process copied it first
            shutil.rmtree(partial, ignore_errors=True)
    return target / "pgserver" / "pginstall" / "bin"


def server_binaries() -> Path:
    """The folder holding ``initdb`` and ``postgres``."""
    given = env("AGENTEDIT_PG_BIN")
    found = [given] if given else sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    for folder in reversed(found):
        if (Path(folder) / "postgres").exists() and (Path(folder) / "initdb").exists():
            return Path(folder)
    raise AgentEditError("no PostgreSQL server binaries found (looked in $AGENTEDIT_PG_BIN and /usr/lib/postgresql/*/bin);"
                         " install them with `apt-get install -y postgresql`")


class LocalPostgres:
    """``initdb`` into a fresh folder, then ``postgres`` on 127.0.0.1:``port``; :meth:`stop` and :meth:`start` again
    keep the data (a database that goes down and comes back), :meth:`close` also removes it."""

    def __init__(self, *, port: int | None = None, database: str = "agentedit", log_path: str | None = None,
                 pgvector: bool = False) -> None:
        self.bin = pgvector_binaries() if pgvector else server_binaries()
        self.port = port or free_port()
        self.database = database
        self.dir = Path(tempfile.mkdtemp(prefix="agentedit-pg-"))
        self.data = self.dir / "data"
        self.log_path = Path(log_path) if log_path else self.dir / "postgres.log"
        self._user = "postgres" if os.geteuid() == 0 else None
        self._proc: subprocess.Popen[bytes] | None = None
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chmod(self.dir, 0o755)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--no-sync"])
        self._initialised = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _as_user(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", self._user, "--", *cmd] if self._user else cmd

    def _run(self, cmd: list[str]) -> None:
        done = subprocess.run(self._as_user(cmd), capture_output=True, text=True)
        if done.returncode != 0:
            raise AgentEditError(f"{Path(cmd[0]).name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")

    def start(self, timeout: float = 60.0) -> "LocalPostgres":
        """Start the server (again) and wait until it takes connections."""
        import psycopg

        log = open(self.log_path, "ab")
        cmd = [str(self.bin / "postgres"), "-D", str(self.data), "-h", "127.0.0.1", "-p", str(self.port),
               "-k", str(self.dir), "-c", "fsync=off", "-c", "max_connections=200", "-c", "shared_buffers=128MB"]
        self._proc = subprocess.Popen(self._as_user(cmd), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        while True:
            if self._proc.poll() is not None:
                raise AgentEditError(f"postgres exited with status {self._proc.returncode}: "
                                     f"{self.log_path.read_text('utf-8', errors='replace')[-2000:]}")
            try:
                with psycopg.connect(admin, autocommit=True, connect_timeout=2) as conn:
                    if not self._initialised:
                        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone():
                            conn.execute(f'CREATE DATABASE "{self.database}"')
                        self._initialised = True
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise AgentEditError(f"postgres on port {self.port} did not take connections within {timeout:g} s")
                time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """A fast shutdown (``pg_ctl stop -m fast``: connections are closed, the data stays)."""
        if self._proc is None or self._proc.poll() is not None:
            return
        subprocess.run(self._as_user([str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w",
                                      "-t", str(int(timeout))]), capture_output=True)
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "LocalPostgres":
        return self.start() if self._proc is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
