"""The one internal shape every benchmark is loaded into."""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Sequence, get_args

ProbeKind = Literal["reliability", "generality", "locality", "portability", "multihop"]
ProbeStyle = Literal["complete", "chat"]
PROBE_KINDS: tuple[str, ...] = get_args(ProbeKind)


@dataclass
class Probe:
    """One question asked after editing.

    ``targets`` are the accepted answers (new target and its aliases) for
    reliability/generality/portability/multihop; locality probes are scored
    against the unedited model's answer, ``targets`` holds the true answer for
    reference. ``group`` ties the questions of one multi-hop case together (a
    case counts as solved when any question of its group is answered).
    """

    kind: ProbeKind
    prompt: str
    targets: list[str]
    style: ProbeStyle = "complete"
    subkind: str = ""
    group: str = ""
    messages: list[dict[str, Any]] | None = None  # a conversation, asked as chat; ``prompt`` is then its last user turn

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Case:
    """Edits that go into memory together, and the probes that test them."""

    case_id: str
    dataset: str
    edits: list[dict[str, Any]]
    probes: list[Probe] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "dataset": self.dataset, "edits": self.edits, "probes": [p.to_dict() for p in self.probes]}


def select_cases(every: Sequence[Case], *, seed: int | None, limit: int | None,
                 probe_limit: int | None) -> tuple[list[Case], list[Case], list[Case]]:
    """A run's cases from a dataset's: shuffled by ``seed`` (file order without one), the first ``limit`` go into
    memory, the rest are spare (filling the memory-size curves), and the first ``probe_limit`` of those in memory
    are probed. Returns (in memory, spare, probed)."""
    every = list(every)
    if seed is not None:
        random.Random(seed).shuffle(every)
    limit = limit if limit is not None else len(every)
    cases = every[:limit]
    return cases, every[limit:], cases[:probe_limit] if probe_limit else cases


def sized_runs(cases: Sequence[Case], spare: Sequence[Case], probed: Sequence[Case], sizes: Sequence[int],
               size_probe_cases: int) -> list[tuple[str, list[Case], list[Case]]]:
    """(size, probed cases, cases in memory) for the whole run ("all") and each memory size of the curve: the first
    ``size_probe_cases`` cases are probed, the memory filled up to the size from the rest and then the spare cases."""
    out = [("all", list(probed), list(cases))]
    for s in sorted(set(sizes)):
        probe_cases = list(cases[: min(s, size_probe_cases)])
        extra = (list(cases[len(probe_cases):]) + list(spare))[: max(0, s - len(probe_cases))]
        out.append((str(s), probe_cases, probe_cases + extra))
    return out


def _words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\w+", text.lower()))


def locality_collisions(probed: Sequence[Case], memory: Sequence[Case], *, longest: int = 16) -> set[str]:
    """Ids of the ``probed`` cases with a locality probe that names (as whole words) the subject of an edit of
    *another* case in ``memory`` (a name that is not the probed case's own subject). With thousands of edits in memory
    a benchmark's "unrelated" probe is often about a subject another case edits (CounterFact at T = 10,000: "Delhi's
    twin city" is probed for one case and edited by another), so an answer that changes there is the other edit
    applied, not a locality failure."""
    subjects: dict[tuple[str, ...], set[str]] = {}
    for case in memory:
        for edit in case.edits:
            if (words := _words(str(edit.get("subject") or ""))) and len(words) <= longest:
                subjects.setdefault(words, set()).add(case.case_id)
    out: set[str] = set()
    for case in probed:
        own = {_words(str(edit.get("subject") or "")) for edit in case.edits}
        for probe in case.probes:
            if probe.kind != "locality":
                continue
            words = _words(probe.prompt)
            grams = {words[i:j] for i in range(len(words)) for j in range(i + 1, min(len(words), i + longest) + 1)}
            # its own subject asked another way is the dataset's same-subject probe (ZsRE), not a collision
            if any(subjects.get(g, set()) - {case.case_id} for g in grams - own):
                out.add(case.case_id)
    return out
