"""Unit tests of agentedit.registry.Registry, and of the registries built on it being lazy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentedit.errors import ConfigError
from agentedit.registry import Registry


def test_string_target_is_imported_on_first_get_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    reg: Registry[object] = Registry("colour converter")
    reg.add("hsv", "colorsys:rgb_to_hsv")
    assert "colorsys" not in sys.modules  # registering imports nothing
    assert "hsv" in reg and list(reg) == ["hsv"] and len(reg) == 1
    assert "colorsys" not in sys.modules  # nor do membership, iteration and len
    fn = reg.get("hsv")
    assert "colorsys" in sys.modules
    assert fn is sys.modules["colorsys"].rgb_to_hsv
    assert reg.get("hsv") is fn  # resolved once, then cached


def test_dotted_attribute_and_plain_objects() -> None:
    reg: Registry[object] = Registry("thing")
    reg.add("decode", "json:JSONDecoder.decode")
    assert reg.get("decode") is json.JSONDecoder.decode
    marker = object()
    reg.add("marker", marker)
    assert reg.get("marker") is marker

    @reg.register("double")
    def double(x: int) -> int:
        return 2 * x

    assert reg.get("double") is double and double(2) == 4
    assert reg.names() == ("decode", "marker", "double")


def test_unknown_name_lists_known_names_and_hint() -> None:
    reg: Registry[object] = Registry("widget", "see the docs")
    reg.add("alpha", object())
    reg.add("beta", "json:dumps")
    with pytest.raises(ConfigError) as err:
        reg.get("gamma")
    msg = str(err.value)
    assert "unknown widget 'gamma'" in msg and "alpha, beta" in msg and "see the docs" in msg


def test_duplicate_refused_unless_replace() -> None:
    reg: Registry[object] = Registry("widget")
    first, second = object(), object()
    reg.add("a", first)
    with pytest.raises(ConfigError, match="already registered"):
        reg.add("a", second)
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("a")(second)
    assert reg.get("a") is first
    reg.add("a", second, replace=True)
    assert reg.get("a") is second  # the cached first resolution is dropped
    assert len(reg) == 1


def test_empty_name_refused() -> None:
    with pytest.raises(ConfigError, match="non-empty name"):
        Registry("widget").add("", object())


def test_package_registries_import_lazily() -> None:
    """Importing the scope and parametric packages loads neither the trained checker nor a parametric method."""
    code = (
        "import sys; import agentedit.scope as s, agentedit.parametric as p\n"
        "lazy = ['agentedit.scope.trained', 'agentedit.scope.training', 'agentedit.parametric.rome',\n"
        "        'agentedit.parametric.memit', 'agentedit.parametric.ft', 'agentedit.parametric.alphaedit']\n"
        "assert not [m for m in lazy if m in sys.modules], [m for m in lazy if m in sys.modules]\n"
        "assert list(s.CHECKERS) == ['similarity', 'relation', 'relation-clauses', 'trained', 'sentinel', 'judge', 'cascade', 'prefix-all', 'none']\n"
        "assert list(p.METHODS) == ['rome', 'memit', 'ft', 'alphaedit', 'grace', 'wise', 'recipe']\n"
        "assert p.METHODS.get('rome') is p.ROME and 'agentedit.parametric.rome' in sys.modules\n"
        "assert s.CHECKERS.get('trained').__module__ == 'agentedit.scope.trained'\n"
        "assert 'agentedit.scope.training' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[1]  # this checkout's package, not an installed one
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr
