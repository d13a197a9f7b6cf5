"""Suites are data: YAML files naming datasets, methods, protocol, scoring and sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .config import OPTIONS, RunConfig

_FIELDS = set(OPTIONS) | {"name", "description"}


def suite_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent.parent
    return [Path.cwd() / "evals" / "suites", here / "_suites", here.parent / "evals" / "suites"]


def load_suite(name_or_path: str) -> dict[str, Any]:
    """Read a suite by name (``quick``, ``standard``, ``full``) or from a YAML path."""
    import yaml

    path = Path(name_or_path)
    if not path.suffix:
        found = next((d / f"{name_or_path}.yaml" for d in suite_dirs() if (d / f"{name_or_path}.yaml").exists()), None)
        if found is None:
            known = sorted({p.stem for d in suite_dirs() if d.is_dir() for p in d.glob("*.yaml")})
            raise ConfigError(f"unknown suite {name_or_path!r}; known: {', '.join(known) or 'none found'}")
        path = found
    if not path.exists():
        raise ConfigError(f"suite file {path} not found")
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"suite file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"suite file {path} must be a mapping of settings")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ConfigError(f"suite file {path}: unknown setting(s) {', '.join(unknown)}")
    return data


def config_from_suite(suite: dict[str, Any], **overrides: Any) -> RunConfig:
    settings = {k: v for k, v in suite.items() if k in OPTIONS}
    settings["suite"] = suite.get("name", "custom")
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if not settings.get("datasets") or not settings.get("methods"):
        raise ConfigError("a suite needs datasets and methods")
    return RunConfig(**settings)
