"""Build ``evals/data/userstyle.jsonl``: the generated part of the user-style scope benchmark (seeded, deterministic).

Reads only training files (:data:`SOURCES`): CounterFact's train split, KnowEdit's wiki_counterfact train file and
Sanitation's train split, never an evaluation file. Each training triple whose relation template falls in a
:mod:`relation family <evals.userstyle.families>` becomes a case: the edit as a plain sentence of varied shape (with
the gold subject, prompt and target kept beside it), and probes: the relation asked in other words, near misses
(same subject other relation, same relation other subject, a look-alike name), surname-only references, two-turn
conversations with pronoun follow-ups in and out of scope, joined questions; some cases carry a correction in other
words that must supersede the first statement. Sanitation's retained-knowledge questions are unrelated probes.

    python evals/userstyle/build.py            # writes evals/data/userstyle.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from evals.userstyle.families import FAMILIES, NEIGHBOURS, Family, family_of  # noqa: E402

SOURCES = {  # name -> path under the data directory; the only files the builder opens
    "counterfact-train": "counterfact/counterfact-train.json",
    "wiki_counterfact-train": "knowedit/wiki_counterfact/train_cf.json",
    "sanitation-train": "knowedit/Sanitation/trivia_qa_train.json",
}
OUT = ROOT / "evals" / "data" / "userstyle.jsonl"
SEED = 17
PER_FAMILY = 7
PERSON_KINDS = ("person", "athlete", "musician")
FIRST_NAMES = ("Maria", "Peter", "Anna", "Jonas", "Clara", "Tomas", "Elena", "Victor")
OPENERS = ("", "Update: ", "FYI, ", "Note that ", "Actually, ", "As of today, ")
CORRECTION_OPENERS = ("Correction: ", "Sorry, I was wrong: ", "Scratch that: ", "Update to my earlier note: ")


def read_sources(data_dir: Path, opened: list[str] | None = None) -> dict[str, Any]:
    """The training files, by name; ``opened`` collects the paths read (the tests check them)."""
    out = {}
    for name, rel in SOURCES.items():
        path = data_dir / rel
        if opened is not None:
            opened.append(str(path))
        out[name] = json.loads(path.read_text("utf-8"))
    return out


def _triples(sources: dict[str, Any]) -> list[dict[str, str]]:
    """(source, subject, prompt, template, target, family) of every usable training record, in file order."""
    out = []
    for src in ("counterfact-train", "wiki_counterfact-train"):
        for i, r in enumerate(sources[src]):
            subject, prompt, target = r.get("subject"), r.get("prompt"), r.get("target_new")
            if isinstance(target, dict):
                target = target.get("str")
            if not all(isinstance(x, str) and x.strip() for x in (subject, prompt, target)) or subject not in prompt:
                continue
            if not re.fullmatch(r"[\w .'\-&]+", subject) or len(subject) < 4 or target.lower() in subject.lower():
                continue
            fam = family_of(prompt.replace(subject, "{}"))
            if fam is not None:
                out.append({"source": f"{src}#{r.get('case_id', i)}", "subject": subject, "prompt": prompt,
                            "target": target, "family": fam.name})
    return out


def _surname(subject: str) -> str | None:
    words = subject.split()
    if 2 <= len(words) <= 3 and all(w[:1].isupper() and w.isalpha() for w in words) and len(words[-1]) >= 4:
        return words[-1]
    return None


def _pronoun_question(question: str, subject: str, kind: str) -> str:
    return question.replace(subject, "this person" if kind in PERSON_KINDS else "it")


def _sentence(template: str, s: str, o: str) -> str:
    text = template.format(s=s, o=o)
    return text[0].upper() + text[1:]


class Builder:
    def __init__(self, sources: dict[str, Any], seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.triples = _triples(sources)
        self.sanitation = [r["question"] for r in sources["sanitation-train"]["K_R"] if isinstance(r.get("question"), str)]
        self.fam = {f.name: f for f in FAMILIES}

    def _pick(self) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        """Up to PER_FAMILY cases per family with distinct, non-overlapping subjects; the rest is the pool of other
        subjects for same-relation near misses."""
        by_family: dict[str, list[dict[str, str]]] = {}
        for t in self.triples:
            by_family.setdefault(t["family"], []).append(t)
        chosen: list[dict[str, str]] = []
        words: set[str] = set()
        for f in FAMILIES:
            items = list(by_family.get(f.name, []))
            self.rng.shuffle(items)
            n = 0
            for t in items:
                low = t["subject"].lower()
                if n >= PER_FAMILY or any(w in words for w in low.split()) or low in {c["subject"].lower() for c in chosen}:
                    continue
                chosen.append(t)
                words.update(low.split())
                n += 1
        taken = {c["subject"].lower() for c in chosen}
        pool = [t for t in self.triples if not set(t["subject"].lower().split()) & words and t["subject"].lower() not in taken]
        return chosen, pool

    def _probe(self, pid: str, ptype: str, in_scope: bool, prompt: str | None = None, target: str | None = None,
               messages: list[dict[str, str]] | None = None) -> dict[str, Any]:
        p: dict[str, Any] = {"id": pid, "type": ptype, "in_scope": in_scope}
        if messages is not None:
            p["messages"] = messages
        else:
            p["prompt"] = prompt
        if target is not None:
            p["target"] = target
        return p

    def case(self, n: int, t: dict[str, str], pool: list[dict[str, str]], correction: bool) -> dict[str, Any]:
        rng, f = self.rng, self.fam[t["family"]]
        s, o = t["subject"], t["target"]
        cid = f"u{n:04d}"
        shape = rng.choice(f.statements)
        statement = _opened(rng.choice(OPENERS), shape, s, o)
        edits = [{"statement": statement, "subject": s, "prompt": t["prompt"], "target": o}]
        if correction:
            others = [x["target"] for x in self.triples if x["family"] == f.name and x["target"] != o]
            o = rng.choice(others)
            shapes = [x for x in f.statements if x != shape] or list(f.statements)
            edits.append({"statement": _opened(rng.choice(CORRECTION_OPENERS), rng.choice(shapes), s, o), "subject": s,
                          "prompt": t["prompt"], "target": o})
        qs = rng.sample(f.questions, min(2, len(f.questions)))
        probes = [self._probe(f"{cid}.q{i}", "question", True, q.format(s=s), o) for i, q in enumerate(qs)]
        same_kind = [g for g in FAMILIES if g.kind == f.kind and g.name != f.name]
        if same_kind:
            g = rng.choice(same_kind)
            probes.append(self._probe(f"{cid}.sr", "same-subject-other-relation", False, rng.choice(g.questions).format(s=s)))
        neighbour = rng.choice(NEIGHBOURS[f.kind]).format(s=s)
        probes.append(self._probe(f"{cid}.nb", "same-subject-other-relation", False, neighbour))
        others = [x for x in pool if x["family"] == f.name]
        if others:
            other = rng.choice(others)["subject"]
            probes.append(self._probe(f"{cid}.os", "same-relation-other-subject", False, rng.choice(f.questions).format(s=other)))
        surname = _surname(s) if f.kind in PERSON_KINDS else None
        if surname:
            probes.append(self._probe(f"{cid}.sn", "surname", True, rng.choice(f.questions).format(s=surname), o))
            first = next(x for x in rng.sample(FIRST_NAMES, len(FIRST_NAMES)) if x != s.split()[0])
            probes.append(self._probe(f"{cid}.la", "lookalike", False, rng.choice(f.questions).format(s=f"{first} {surname}")))
        q_in = rng.choice(f.questions).format(s=s)
        probes.append(self._probe(f"{cid}.fi", "followup-in", True, messages=[
            {"role": "user", "content": neighbour}, {"role": "assistant", "content": "I'm not certain about that."},
            {"role": "user", "content": "And " + _lower_first(_pronoun_question(q_in, s, f.kind))}], target=o))
        nb_q = rng.choice(NEIGHBOURS[f.kind]).format(s=s)
        probes.append(self._probe(f"{cid}.fo", "followup-out", False, messages=[
            {"role": "user", "content": rng.choice(f.questions).format(s=s)}, {"role": "assistant", "content": f"{o}."},
            {"role": "user", "content": "OK. " + _pronoun_question(nb_q, s, f.kind)}]))
        probes.append(self._probe(f"{cid}.jq", "joined", True,
                                  f"{neighbour.rstrip('?')}, and {_lower_first(rng.choice(f.questions).format(s=s))}", o))
        return {"id": cid, "origin": "generated", "source": t["source"], "family": f.name, "kind": f.kind,
                "edits": edits, "supersedes": correction, "probes": probes}

    def build(self) -> list[dict[str, Any]]:
        chosen, pool = self._pick()
        out = [self.case(n, t, pool, correction=(n % 4 == 3)) for n, t in enumerate(chosen)]
        unrelated = self.rng.sample(self.sanitation, min(40, len(self.sanitation)))
        out.append({"id": "u-unrelated", "origin": "generated", "source": "sanitation-train#K_R", "family": None, "kind": None,
                    "edits": [], "supersedes": False,
                    "probes": [self._probe(f"u-unrelated.{i}", "unrelated", False, q) for i, q in enumerate(unrelated)]})
        return out


def _opened(opener: str, template: str, s: str, o: str) -> str:
    """``opener`` + the statement; the template's own first word loses its capital after an opener."""
    if opener and not template.startswith("{"):
        template = template[:1].lower() + template[1:]
    return opener + _sentence(template, s, o) if not opener else opener + template.format(s=s, o=o)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets"))
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    cases = Builder(read_sources(Path(args.data_dir)), args.seed).build()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        for c in cases:
            fh.write(json.dumps(c, ensure_ascii=False) + "\n")
    n_probes = sum(len(c["probes"]) for c in cases)
    print(f"{len(cases)} cases, {n_probes} probes -> {args.out}")


if __name__ == "__main__":
    main()
