"""Rendering in-scope edits into the request: an "updated facts" block or IKE demonstrations.

Chat requests get the block as (part of) the system message; completion prompts
get it as a text prefix. Facts are JSON-quoted and fenced by a random marker
per request (see :mod:`agentedit.prompts`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from .errors import ConfigError
from .memory.embed import Embedder
from .prompts import new_marker, quote, render
from .types import EditRecord

logger = logging.getLogger(__name__)

InjectionMode = Literal["facts", "ike"]


@dataclass(frozen=True)
class Demo:
    """One IKE demonstration: a new fact, a question, and the answer a good model gives."""

    kind: Literal["copy", "update", "retain"]
    fact: str
    question: str
    answer: str


class DemoPool:
    """IKE demonstrations built from a CounterFact-shaped file, retrieved by similarity to the query.

    Each training case gives three demonstrations: *copy* (the edit's own prompt
    answered with the new target), *update* (a paraphrase answered with the new
    target) and *retain* (an unrelated prompt answered with its original answer).
    Never build the pool from the evaluation split.
    """

    def __init__(self, demos: list[Demo], vectors: np.ndarray, embedder: Embedder) -> None:
        self.demos = demos
        self.vectors = vectors
        self.embedder = embedder

    @classmethod
    def from_counterfact(cls, path: str | Path, embedder: Embedder, *, n_cases: int = 1000,
                         cache_dir: str | Path | None = None) -> "DemoPool":
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"IKE demonstration pool {p} not found; pass the path to counterfact-train.json (see --data-dir)")
        try:
            cases = json.loads(p.read_text("utf-8"))[:n_cases]
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"IKE demonstration pool {p} is not a JSON list of CounterFact cases: {exc}") from None
        demos: list[Demo] = []
        for case in cases:
            try:
                fact = quote(f"{case['prompt']} {case['target_new']}.")
                demos.append(Demo("copy", fact, case["prompt"], case["target_new"]))
                demos.append(Demo("update", fact, case["rephrase_prompt"], case["target_new"]))
                demos.append(Demo("retain", fact, case["locality_prompt"], case["locality_ground_truth"]))
            except (KeyError, TypeError):
                raise ConfigError(f"{p}: case {case!r:.120} lacks prompt/target_new/rephrase_prompt/locality_prompt") from None
        vectors = None
        cache_file = None
        if cache_dir is not None:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            cache_file = Path(cache_dir) / f"ike-{digest}-{n_cases}-{embedder.name}.npy"
            if cache_file.exists():
                vectors = np.load(cache_file)
        if vectors is None or len(vectors) != len(demos):
            vectors = embedder.embed([f"{d.fact} {d.question}" for d in demos])
            if cache_file is not None:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                np.save(cache_file, vectors)
        return cls(demos, vectors, embedder)

    def select(self, query: str, k: int = 6, vector: np.ndarray | None = None) -> list[Demo]:
        """The ``k`` demonstrations nearest the query, with every kind represented, nearest last."""
        vec = self.embedder.embed_one(query) if vector is None else vector
        scores = self.vectors @ vec
        order = np.argsort(-scores)
        picked: list[int] = []
        for kind in ("retain", "update", "copy"):  # make sure each kind shows up at least once
            nxt = next((int(i) for i in order if self.demos[i].kind == kind), None)
            if nxt is not None:
                picked.append(nxt)
        for i in order:
            if len(picked) >= k:
                break
            if int(i) not in picked:
                picked.append(int(i))
        picked = sorted(picked[:k], key=lambda i: scores[i])  # nearest last, right before the real question
        return [self.demos[i] for i in picked]


def fact_lines(edits: Sequence[EditRecord]) -> list[str]:
    return [quote(e.statement) for e in edits]


def _last_user_index(messages: Sequence[dict[str, Any]]) -> int | None:
    return next((i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "user"), None)


def _answered_before(messages: Sequence[dict[str, Any]]) -> int | None:
    """The index of the last user message when the model has spoken earlier in the conversation, else None."""
    last = _last_user_index(messages)
    if last is None or not any(m.get("role") in ("assistant", "tool") for m in messages[:last]):
        return None
    return last


def _prefixed(content: Any, block: str) -> Any:
    if isinstance(content, list):  # OpenAI content parts: the block as a text part in front
        return [{"type": "text", "text": block}, *content]
    return f"{block}{_content_text(content)}"


def compose_chat(messages: Sequence[dict[str, Any]], edits: Sequence[EditRecord], *, mode: InjectionMode = "facts",
                 demos: Sequence[Demo] = ()) -> list[dict[str, Any]]:
    """Return new messages with the facts block merged into the (first) system message; in a conversation where the
    model has already answered, the block goes in front of the last user message instead (``facts`` mode), where a
    small model still reads it: a system block many turns back lost to the model's own earlier "I'm not sure"."""
    msgs = [dict(m) for m in messages]
    if not edits:
        return msgs
    facts = fact_lines(edits)
    last = _answered_before(msgs) if mode == "facts" else None
    if last is not None:
        block = render("facts_prefix", facts=facts, marker=new_marker(facts), prompt="").rstrip() + "\n\n"
        msgs[last]["content"] = _prefixed(msgs[last].get("content"), block)
        return msgs
    user_system = ""
    if msgs and msgs[0].get("role") == "system":
        user_system = _content_text(msgs.pop(0).get("content"))
    template = "ike_system" if mode == "ike" else "facts_system"
    system = render(template, facts=facts, marker=new_marker(facts), user_system=user_system, demos=list(demos))
    return [{"role": "system", "content": system}, *msgs]


def compose_prefix(prompt: str, edits: Sequence[EditRecord]) -> str:
    """A completion prompt with the facts block in front of it."""
    if not edits:
        return prompt
    facts = fact_lines(edits)
    return render("facts_prefix", facts=facts, marker=new_marker(facts), prompt=prompt)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "" if content is None else str(content)


def last_user_text(messages: Sequence[dict[str, Any]]) -> str:
    """The text of the last user message: what retrieval and scope look at."""
    last = _last_user_index(messages)
    return "" if last is None else _content_text(messages[last].get("content"))
