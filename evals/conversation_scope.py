"""Follow-ups that name their subject by pronoun: does the edit still apply, and only where it should? (issue 17.3)

From CounterFact cases (the training split by default), each edit is stored, then three chats are prepared
through the real workflow (``Editor.prepare_chat``: retrieval, the ``relation`` checker, no model call):

- **named**: the case's paraphrase as a single message (the single-turn baseline);
- **follow-up**: a first turn naming the subject ("Tell me about X." / "X is well known."), then the paraphrase
  with the subject replaced by *they*/*their* (any entity, so no gender is guessed);
- **other attribute**: the same conversation, but the follow-up asks another case's relation (a paraphrase of a
  case with another template), with the pronoun: the edit must not apply; **other attribute, named** is that
  question naming the subject, as one message (the checker's own false accepts, for comparison).

It prints how often the edit applied in each, with and without resolving (``window_turns=0`` is the last-message
behaviour of before). Run: ``PYTHONPATH=. python evals/conversation_scope.py [--cases 200] [--data counterfact-train.json]``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from agentedit import Editor
from agentedit.memory import EditMemory
from agentedit.scope.text import find_subject, mask_subject

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "counterfact" / "counterfact-train.json"


def pronoun_form(question: str, subject: str) -> str | None:
    """``question`` with the subject as *they* / *their*, or None when the question does not name it plainly."""
    if not find_subject(question, [subject]):
        return None
    masked = mask_subject(question, subject)
    out = masked.replace("X's", "their").replace("X’s", "their").replace("X", "they", 1)
    return out if "X" not in out else None


def chat(subject: str, follow: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"Tell me about {subject}."},
            {"role": "assistant", "content": f"{subject} is well known."}, {"role": "user", "content": follow}]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    cases = [c for c in json.loads(args.data.read_text("utf-8"))[: args.cases * 3]
             if pronoun_form(c["rephrase_prompt"], c["subject"])][: args.cases]
    with tempfile.TemporaryDirectory() as tmp:
        mem = EditMemory("conv", root=tmp)
        mem.add_many([{"prompt": c["prompt"], "subject": c["subject"], "target_new": c["target_new"],
                       "id": f"c{i}"} for i, c in enumerate(cases)])
        counts = {k: 0 for k in ("named", "follow-up", "follow-up, last message only", "other attribute, named",
                                 "other attribute", "other attribute, last message only")}
        for window, suffix in ((3, ""), (0, ", last message only")):
            ed = Editor(memory=mem, backend=None)
            ctx = ed._context(with_backend=False, multihop="never")
            ctx.window_turns = window
            for i, c in enumerate(cases):
                def applied(messages: list[dict[str, Any]]) -> bool:
                    state = ed._state(messages=messages, prompt=None, namespace=None, style="chat", params={})
                    return f"c{i}" in ed.workflow.prepare(state, ctx).applied_ids
                if window:
                    counts["named"] += applied([{"role": "user", "content": c["rephrase_prompt"]}])
                counts["follow-up" + suffix] += applied(chat(c["subject"], pronoun_form(c["rephrase_prompt"], c["subject"]) or ""))
                other = rng.choice([o for o in cases if mask_subject(o["prompt"], o["subject"]) !=
                                    mask_subject(c["prompt"], c["subject"])])
                asked = pronoun_form(other["rephrase_prompt"], other["subject"]) or ""
                counts["other attribute" + suffix] += applied(chat(c["subject"], asked))
                if window:  # the same question naming the subject, as one message: the checker's own false accepts
                    named = mask_subject(other["rephrase_prompt"], other["subject"]).replace("X", c["subject"], 1)
                    counts["other attribute, named"] += applied([{"role": "user", "content": named}])
        mem.close()
    n = len(cases)
    print(f"{n} CounterFact cases, relation checker, edit applied in:")
    for k, v in counts.items():
        print(f"  {k:38s} {v / n:6.3f}  ({v}/{n})")
    from _report import write

    shares = {k: round(v / n, 3) for k, v in counts.items()}
    lines = [f"# Follow-ups naming their subject by pronoun ({n} cases of {args.data.name})", "",
             "Share of chats in which the case's edit applied (relation checker, `Editor.prepare_chat`, no model call).", "",
             "| chat | edit applied |", "|---|---|", *[f"| {k} | {v:.3f} ({counts[k]}/{n}) |" for k, v in shares.items()]]
    write("conversation-scope", {"cases": n, "data": args.data.name, "seed": args.seed, "applied": shares,
                                 "machine": "2 cores, CPU"}, lines, shares, title="Edit applied, by chat shape",
          ylabel="share of chats")


if __name__ == "__main__":
    main()
