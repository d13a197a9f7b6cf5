"""Loading and rendering the Jinja2 templates kept in ``prompts/``.

No prompt text lives in code: every template is a file, found in
``$AGENTEDIT_PROMPTS``, else the packaged ``agentedit/_prompts``, else the
repository's ``prompts/`` (editable installs).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
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


# Chat-format control tokens. Edit text is untrusted, and a tokenizer with special tokens enabled (llama.cpp's server
# tokenises chat prompts that way; so do transformers tokenizers by default) reads these spellings as the real
# role and turn markers. They are respelled with look-alike brackets that no tokenizer maps to a control token:
# ``<|im_start|>`` reads ``‹|im_start|›``, ``<start_of_turn>`` ``‹start_of_turn›``, ``[INST]`` ``［INST］``.
_PIPES = (("<|", "‹|"), ("|>", "|›"), ("<\uff5c", "‹\uff5c"), ("\uff5c>", "\uff5c›"))  # ChatML, Llama-3, Phi, DeepSeek
_SYS = re.compile(r"<<(/?SYS)>>")  # Llama-2's <<SYS>> / <</SYS>>
_ANGLE_WORD = re.compile(r"<(/?[A-Za-z_][A-Za-z0-9_]*)>")  # <s>, </s>, <start_of_turn>, <think>, <repo_name>, <unk>...
_SQUARE_WORD = re.compile(r"\[(/?[A-Z][A-Z0-9_]*)\]")  # [INST], [/INST], [TOOL_CALLS], [SYSTEM_PROMPT]...


def neutralise_control_tokens(text: str) -> str:
    """``text`` with the control tokens of the common chat formats respelled so that no tokenizer reads them as
    tokens (ChatML, Llama 2 and 3, Mistral, Gemma, Phi, DeepSeek and any ``<|...|>``), keeping it readable."""
    if "<" not in text and "|>" not in text and "\uff5c>" not in text and "[" not in text:
        return text
    for raw, safe in _PIPES:
        text = text.replace(raw, safe)
    text = _SYS.sub(r"‹‹\1››", text)
    text = _ANGLE_WORD.sub(r"‹\1›", text)
    return _SQUARE_WORD.sub(r"［\1］", text)


def quote(text: str) -> str:
    """Quote untrusted text as a JSON string so it reads as data, not as instructions, with its control tokens
    neutralised (:func:`neutralise_control_tokens`): every injected fact goes through here."""
    return json.dumps(neutralise_control_tokens(text), ensure_ascii=False)


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
