"""Tests of agentedit.llama_server with a real llama.cpp server over SmolLM2-135M."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentedit.errors import BackendError, ConfigError
from agentedit.llama_server import LlamaServer
from agentedit.provision import ensure_model

needs_llama_cpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason='llama-cpp-python[server] is not installed (pip install "llama-cpp-python[server]")',
)


@pytest.fixture(scope="session")
def smol_path() -> Path:
    # The real default cache, so the 98 MB model is fetched once and shared between runs.
    return ensure_model("smollm2-135m-instruct")


@pytest.fixture(scope="module")
def server(smol_path: Path) -> Iterator[LlamaServer]:
    with LlamaServer(smol_path, n_ctx=1024, startup_timeout=60) as srv:
        yield srv


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_defaults_and_command(tmp_path: Path) -> None:
    srv = LlamaServer(tmp_path / "SmolLM2-135M.Q4.gguf", n_threads=3, extra_args=["--verbose", "False"])
    assert srv.model_alias == "SmolLM2-135M.Q4"
    assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1"
    cmd = srv.command()
    assert cmd[1:5] == ["-m", "agentedit.child_guard", str(os.getpid()), "llama_cpp.server"]  # dies with its starter
    assert cmd[cmd.index("--n_threads") + 1] == "3"
    assert cmd[-2:] == ["--verbose", "False"]
    assert not srv.is_running
    srv.stop()  # stopping a server that never started is harmless


def test_invalid_settings_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n_ctx"):
        LlamaServer(tmp_path / "m.gguf", n_ctx=0)
    with pytest.raises(ConfigError, match="port"):
        LlamaServer(tmp_path / "m.gguf", port=70000)


def test_generation_threads_default_to_every_core(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentedit.backends.llamacpp import generation_threads

    monkeypatch.delenv("AGENTEDIT_LLAMA_THREADS", raising=False)
    assert generation_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("AGENTEDIT_LLAMA_THREADS", "3")
    assert generation_threads() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("AGENTEDIT_LLAMA_THREADS", bad)
        with pytest.raises(ConfigError, match="AGENTEDIT_LLAMA_THREADS"):
            generation_threads()


@needs_llama_cpp
def test_missing_model_fails_before_spawning(tmp_path: Path) -> None:
    srv = LlamaServer(tmp_path / "absent.gguf")
    with pytest.raises(ConfigError, match="does not exist"):
        srv.start()
    assert not srv.is_running and srv.log_path is None


@needs_llama_cpp
def test_non_gguf_file_is_rejected(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"\x00" * 64)
    srv = LlamaServer(broken)
    with pytest.raises(ConfigError, match="not a GGUF"):
        srv.start()
    assert not srv.is_running


@needs_llama_cpp
@pytest.mark.integration
def test_truncated_gguf_fails_with_log_tail(tmp_path: Path, smol_path: Path) -> None:
    # Right magic, broken body: only llama.cpp itself can notice, so the error carries its log.
    truncated = tmp_path / "truncated.gguf"
    with smol_path.open("rb") as fh:
        truncated.write_bytes(fh.read(4096))
    srv = LlamaServer(truncated, startup_timeout=60)
    with pytest.raises(BackendError) as info:
        srv.start()
    assert "exited" in str(info.value) and "log lines" in str(info.value)
    assert not srv.is_running and srv.log_path is None


@needs_llama_cpp
@pytest.mark.integration
def test_openai_client_chat(server: LlamaServer) -> None:
    from openai import OpenAI

    assert server.is_running
    client = OpenAI(base_url=server.base_url, api_key="x")
    models = [m.id for m in client.models.list().data]
    assert server.model_alias in models
    reply = client.chat.completions.create(
        model=server.model_alias,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=8,
        temperature=0,
    )
    text = reply.choices[0].message.content
    assert text and text.strip()


@needs_llama_cpp
@pytest.mark.integration
def test_stop_frees_the_port(smol_path: Path) -> None:
    srv = LlamaServer(smol_path, n_ctx=512, startup_timeout=60).start()
    port = srv.port
    assert srv.is_running and _port_open(port)
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 10
    assert not srv.is_running
    assert not _port_open(port)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{srv.base_url}/models", timeout=2)
    srv.stop()  # idempotent
    assert not srv.is_running


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie waiting for a reaper is not running


@needs_llama_cpp
@pytest.mark.integration
def test_forgotten_server_is_stopped_at_exit(smol_path: Path) -> None:
    script = (
        "import sys\n"
        "from agentedit.llama_server import LlamaServer\n"
        "srv = LlamaServer(sys.argv[1], n_ctx=512, startup_timeout=60).start()\n"
        "print(srv.pid, srv.port, flush=True)\n"  # exits without stop()
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", script, str(smol_path)], capture_output=True, text=True, timeout=90, env=env
    )
    assert out.returncode == 0, out.stderr
    pid, port = map(int, out.stdout.split())
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
    assert not _port_open(port)


@pytest.mark.integration
def test_a_server_whose_starter_is_killed_stops_too(smol_path: Path) -> None:
    """SIGKILL of the process that started the server runs no atexit handler; the child guard stops it anyway
    (an orphaned llama.cpp server keeps spinning its threads and takes the cores of a small machine)."""
    script = (
        "import sys, time\n"
        "from agentedit.llama_server import LlamaServer\n"
        "srv = LlamaServer(sys.argv[1], n_ctx=512, startup_timeout=60).start()\n"
        "print(srv.pid, srv.port, flush=True)\n"
        "time.sleep(300)\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    starter = subprocess.Popen([sys.executable, "-c", script, str(smol_path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        pid, port = map(int, starter.stdout.readline().split())  # type: ignore[union-attr]
        assert _alive(pid)
        starter.kill()
        starter.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(pid)
        assert not _port_open(port)
    finally:
        starter.kill()
