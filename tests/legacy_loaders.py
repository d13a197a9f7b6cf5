"""The hand-written loaders the dataset declarations replaced, kept as the oracle that
``tests/test_eval_schema.py`` compares the declarations' output with on the real shared files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentedit.evaluation.cases import Case, Probe
from agentedit.evaluation.schema import EvalDataError


def _read(path: Path) -> Any:
    if not path.exists():
        raise EvalDataError(f"{path} not found; check --data-dir (the file should be copied there as-is)")
    try:
        return json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvalDataError(f"{path} is not valid UTF-8 JSON: {exc}") from None


def _str(rec: dict[str, Any], key: str, where: str) -> str:
    val = rec.get(key)
    if isinstance(val, dict):
        val = val.get("str")
    if isinstance(val, list):
        val = val[0] if val else None
    if not isinstance(val, str) or not val.strip():
        raise EvalDataError(f"{where}: field {key!r} is missing or empty")
    return val


def _answers(val: Any) -> list[str]:
    if isinstance(val, str):
        return [val]
    if isinstance(val, list):
        out: list[str] = []
        for v in val:
            out.extend(_answers(v))
        return out
    return []


def _records(data: Any, path: Path) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise EvalDataError(f"{path}: expected a JSON list of objects")
    return data


def load_counterfact(path: Path, name: str = "counterfact-edit") -> list[Case]:
    cases = []
    for i, r in enumerate(_records(_read(path), path)):
        where = f"{path.name} record {i}"
        target = _str(r, "target_new", where)
        cid = str(r.get("case_id", i))
        cases.append(Case(cid, name, [{"prompt": _str(r, "prompt", where), "subject": _str(r, "subject", where),
                                       "target_new": target, "target_old": r.get("ground_truth")}], [
            Probe("reliability", r["prompt"], [target]),
            Probe("generality", _str(r, "rephrase_prompt", where), [target]),
            Probe("locality", _str(r, "locality_prompt", where), _answers(r.get("locality_ground_truth"))),
        ]))
    return cases


def load_zsre(path: Path) -> list[Case]:
    cases = []
    for i, r in enumerate(_records(_read(path), path)):
        where = f"{path.name} record {i}"
        target = _str(r, "target_new", where)
        probes = [Probe("reliability", _str(r, "prompt", where), [target], style="chat"),
                  Probe("generality", _str(r, "rephrase_prompt", where), [target], style="chat")]
        for loc in (r.get("locality") or {}).get("Relation_Specificity", []) or []:
            probes.append(Probe("locality", loc["prompt"], _answers(loc.get("ground_truth")), style="chat", subkind="Relation_Specificity"))
        for por in (r.get("portability") or {}).get("Reasoning", []) or []:
            probes.append(Probe("portability", por["prompt"], _answers(por.get("ground_truth")), style="chat", subkind="Reasoning"))
        cases.append(Case(str(i), "zsre", [{"prompt": r["prompt"], "subject": _str(r, "subject", where), "target_new": target,
                                            "target_old": (_answers(r.get("ground_truth")) or [None])[0]}], probes))
    return cases


def load_wiki_counterfact(path: Path) -> list[Case]:
    cases = []
    for i, r in enumerate(_records(_read(path), path)):
        where = f"{path.name} record {i}"
        target = _str(r, "target_new", where)
        probes = [Probe("reliability", _str(r, "prompt", where), [target])]
        for sub, items in (r.get("portability") or {}).items():
            for it in items or []:
                probes.append(Probe("portability", it["prompt"], _answers(it.get("ground_truth")), subkind=sub))
        for sub, items in (r.get("locality") or {}).items():
            for it in items or []:
                probes.append(Probe("locality", it["prompt"], _answers(it.get("ground_truth")), subkind=sub))
        cases.append(Case(str(i), "wiki_counterfact", [{"prompt": r["prompt"], "subject": _str(r, "subject", where),
                                                        "target_new": target, "target_old": r.get("ground_truth")}], probes))
    return cases


def load_counterfact_portability(path: Path) -> list[Case]:
    cases = []
    for i, r in enumerate(_records(_read(path), path)):
        where = f"{path.name} record {i}"
        rw = r.get("requested_rewrite")
        if not isinstance(rw, dict):
            raise EvalDataError(f"{where}: requested_rewrite is missing")
        subject = _str(rw, "subject", where)
        prompt = _str(rw, "prompt", where).replace("{}", subject)
        target = _str(rw, "target_new", where)
        probes = [Probe("reliability", prompt, [target])]
        probes += [Probe("generality", p, [target]) for p in (r.get("paraphrase_prompts") or [])[:2]]
        probes += [Probe("locality", p, [_str(rw, "target_true", where)]) for p in (r.get("neighborhood_prompts") or [])[:2]]
        port = r.get("portability") or {}
        if port.get("New Question"):
            probes.append(Probe("portability", port["New Question"], _answers(port.get("New Answer")), style="chat", subkind="one-hop"))
        cases.append(Case(str(r.get("case_id", i)), "counterfact-portability",
                          [{"prompt": prompt, "subject": subject, "target_new": target, "target_old": _str(rw, "target_true", where)}], probes))
    return cases


def load_mquake(path: Path) -> list[Case]:
    cases = []
    for i, r in enumerate(_records(_read(path), path)):
        where = f"{path.name} record {i}"
        rewrites = r.get("requested_rewrite")
        if not isinstance(rewrites, list) or not rewrites:
            raise EvalDataError(f"{where}: requested_rewrite must be a non-empty list")
        edits = []
        for rw in rewrites:
            subject = _str(rw, "subject", where)
            edits.append({"prompt": _str(rw, "prompt", where).replace("{}", subject), "subject": subject,
                          "target_new": _str(rw, "target_new", where), "target_old": rw.get("target_true", {}).get("str")})
        answers = [_str(r, "new_answer", where), *_answers(r.get("new_answer_alias"))]
        cid = str(r.get("case_id", i))
        probes = [Probe("multihop", q, answers, style="chat", group=cid) for q in r.get("questions", [])]
        if not probes:
            raise EvalDataError(f"{where}: no questions")
        cases.append(Case(cid, "mquake-hard", edits, probes))
    return cases


def load_sanitation(path: Path) -> list[Case]:
    data = _read(path)
    if not isinstance(data, dict) or "success" not in data or "locality" not in data:
        raise EvalDataError(f"{path}: expected an object with 'success' and 'locality' lists")
    cases = []
    for i, r in enumerate(data["success"]):
        where = f"{path.name} success[{i}]"
        q, target = _str(r, "question", where), _str(r, "target_new", where)
        cases.append(Case(f"s{i}", "sanitation", [{"prompt": q, "target_new": target, "target_old": r.get("ground_truth")}],
                          [Probe("reliability", q, [target], style="chat", subkind="K_F")]))
    # Retained knowledge (K_R) probes ride along on the erasure cases, one each, round-robin.
    for j, r in enumerate(data["locality"]):
        if cases:
            q = _str(r, "question", f"{path.name} locality[{j}]")
            cases[j % len(cases)].probes.append(Probe("locality", q, _answers(r.get("ground_truth")), style="chat", subkind="K_R"))
    return cases
