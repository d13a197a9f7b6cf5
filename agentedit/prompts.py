"""Loading and rendering the Jinja2 templates kept in ``prompts/``.

No prompt text lives in code: every template is a file, found in
``$AGENTEDIT_PROMPTS``, else the packaged ``agentedit/_prompts``, else the
repository's ``prompts/`` (editable installs).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from .settings import env
from .errors import ConfigError


def prompts_dir() -> Path:
    override = env("AGENTEDIT_PROMPTS")
    if override:
        path = Path(override)
        if not path.is_dir():
            raise ConfigError(f"AGENTEDIT_PROMPTS={override} is not a directory of prompt templates")
        return path
    here = Path(__file__).resolve().parent
    for candidate in (here / "_prompts", here.parent / "prompts"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("the prompt templates are missing from this installation; reinstall agentedit")


@lru_cache(maxsize=8)
def _environment(root: str):
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


def render(name: str, **variables: Any) -> str:
    """Render ``prompts/<name>.j2`` with ``variables``; surrounding whitespace is stripped."""
    import jinja2

    env = _environment(str(prompts_dir()))
    try:
        template = env.get_template(f"{name}.j2")
    except jinja2.TemplateNotFound:
        raise ConfigError(f"no prompt template {name!r} in {prompts_dir()}") from None
    return template.render(**variables).strip()


def quote(text: str) -> str:
    """Quote untrusted text as a JSON string so it reads as data, not as instructions."""
    return json.dumps(text, ensure_ascii=False)


_SECRET = None


def set_marker_secret(secret: str | None) -> None:
    """Fix the secret markers are derived from (``None``: a fresh random one). The evaluation harness fixes it so that
    a run's requests are the same in every process that works on it (resumed runs, methods sharing cached answers)."""
    global _SECRET
    _SECRET = secret.encode("utf-8") if secret is not None else secrets.token_bytes(16)


def new_marker(facts: Sequence[str] = ()) -> str:
    """A boundary marker an edit's text cannot predict or close.

    It is derived from a random per-process secret and the facts it fences, so
    an edit's author cannot guess it, while the same facts give the same request
    within one process (which keeps identical requests cacheable). Benchmarks set
    ``AGENTEDIT_MARKER_SECRET`` so that requests, and their cached answers, are the
    same across runs; a deployment should leave it unset (or keep it secret).
    """
    global _SECRET
    if _SECRET is None:
        fixed = env("AGENTEDIT_MARKER_SECRET")
        _SECRET = fixed.encode("utf-8") if fixed else secrets.token_bytes(16)
    digest = hmac.new(_SECRET, "\x1f".join(facts).encode("utf-8"), hashlib.sha256).hexdigest()
    return "FACTS-" + digest[:8].upper()
