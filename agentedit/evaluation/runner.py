"""Running methods side by side on benchmarks: the probing loop behind ``agentedit eval``.

Protocols (:mod:`~agentedit.evaluation.protocols`, by name) come in two regimes:

- ``lifelong`` (default, the headline; also ``wise-lifelong``, ``mquake-multihop``): every case's edits are in memory
  at once, then every probe.
- ``single`` (also ``easyedit-knowedit``, ``rome-counterfact``): per case, its edits go in, its probes run, its edits
  are retracted.

The run's options are a :class:`~agentedit.evaluation.config.RunConfig`; its folder (run.json, the rows in
cases.jsonl(.gz)) is :mod:`~agentedit.evaluation.rundir`; methods are names in the
:data:`~agentedit.evaluation.methods.METHODS` registry; results.json, summary.md and the plots come from
:mod:`~agentedit.evaluation.report`. Locality is agreement with the unedited model (``none``), which is always
computed.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from ..backends import resolve_backend
from ..errors import ConfigError
from ..memory import EditMemory, shared_embedder
from ..prompts import set_marker_secret
from ..scope.calibration import default_calibration
from ..scope.conflict import ConflictMatcher
from ..settings import env
from .cache import CachedBackend
from .cases import Case, Probe, select_cases, sized_runs
from .config import Protocol, RunConfig, Scoring
from .loaders import load_dataset
from .protocols import get_protocol
from .methods import METHODS, EditorFactory, RunContext, register_method
from .report import build_report, write_report
from .rundir import CASES, PACKED, Rows, RunFile, read_rows
from .scoring import TeacherForcedScorer, agree, gen_match, normalise

logger = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]
EVAL_MARKER_SECRET = "agentedit-evals"


def fix_eval_marker() -> None:
    """Benchmarks derive the facts block's marker from a fixed secret (``$AGENTEDIT_MARKER_SECRET``, else
    :data:`EVAL_MARKER_SECRET`): every process that works on a run (a resumed run, a second method asking the same
    thing, a rerun of a script) then sends the same requests, which the run's cache of generations can answer."""
    set_marker_secret(env("AGENTEDIT_MARKER_SECRET") or EVAL_MARKER_SECRET)


def _edit_ids(case: Case) -> list[str]:
    return [f"{case.dataset}:{case.case_id}:{j}" for j in range(len(case.edits))]


def _fact_key(edit: dict[str, Any]) -> tuple[str, str]:
    # a plain-statement edit (RippleEdits) has no prompt/target split: the statement is its fact
    return normalise(edit.get("prompt") or ""), normalise(edit.get("target_new") or edit.get("statement") or "")


def _restated_later(records: list[Any], cases: list[Case], matcher: Any = None) -> set[str]:
    """Cases whose every edit a later case restates with another answer: superseded at write time (same key), or,
    with ``matcher`` (a :class:`~agentedit.scope.conflict.ConflictMatcher`), the same fact by its
    :meth:`~agentedit.scope.conflict.ConflictMatcher.same_fact`, so that only the newer reaches the model at query
    time (:func:`~agentedit.scope.conflict.newest_wins`). The case's own probes then ask a fact that no longer holds.
    ZsRE has such pairs (two cases editing one player's team)."""
    case_of = {eid: c.case_id for c in cases for eid in _edit_ids(c)}
    answer_of = {e["id"]: normalise(e.get("target_new") or "") for e in _edits_of(cases)}
    pairs = [(rec.id, rec.supersedes) for rec in records if rec.supersedes]  # (newer, older)
    if matcher is not None:
        by_subject: dict[str, list[Any]] = {}
        for rec in records:  # in write order: later records are newer
            if rec.subject:
                by_subject.setdefault(normalise(rec.subject), []).append(rec)
        for group in (g for g in by_subject.values() if len(g) > 1):
            pairs += [(newer.id, older.id) for i, older in enumerate(group) for newer in group[i + 1:]
                      if matcher.same_fact(newer, older) is not None]
    beaten = {old for new, old in pairs if case_of.get(old) not in (None, case_of.get(new))
              and answer_of.get(old) != answer_of.get(new)}
    return {c.case_id for c in cases if c.edits and all(e in beaten for e in _edit_ids(c))}


def _edits_of(cases: list[Case]) -> list[dict[str, Any]]:
    out = []
    for case in cases:
        for eid, e in zip(_edit_ids(case), case.edits):
            out.append({**{k: v for k, v in e.items() if v is not None}, "id": eid})
    return out


class Runner:
    def __init__(self, config: RunConfig, out: str | os.PathLike[str], *, progress: ProgressFn | None = None,
                 backend: Any = None) -> None:
        for m in config.methods:
            METHODS.get(m)  # an unknown name fails here, listing the known ones
        self.protocol = get_protocol(config.protocol)  # an unknown name fails here, listing the known ones
        if config.scoring not in ("generation-match", "teacher-forced"):
            raise ConfigError(f"unknown scoring {config.scoring!r}; use generation-match or teacher-forced")
        self.config = config
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        fix_eval_marker()
        self.progress = progress or (lambda desc, done, total: None)
        self.run_file = RunFile(self.out, config)  # refuses a folder holding another configuration's results
        self.settings = config.settings
        inner = backend if backend is not None else resolve_backend(self.settings.model.spec, timeout=180,
                                                                    default_params={"max_tokens": config.max_tokens})
        self.backend = CachedBackend(inner, self.out / "cache" / "generations.jsonl")
        self.ctx = RunContext(config, self.backend, self.out)
        self._scorer: TeacherForcedScorer | None = None
        self._facts: dict[str, tuple[str, str]] = {}
        self.embedder = shared_embedder()

    # -- scoring -------------------------------------------------------------------------------
    @property
    def scorer(self) -> TeacherForcedScorer:
        if self._scorer is None:
            spec = self.settings.model.spec
            if spec.kind == "hf":
                self._scorer = resolve_backend(spec)  # type: ignore[assignment]  # LocalBackend has top1()
                return self._scorer  # type: ignore[return-value]
            if spec.kind != "llamacpp":
                raise ConfigError("teacher-forced scoring needs the model's logits in-process: use a llamacpp:<name|file.gguf> model")
            from ..provision import ensure_model

            self._scorer = TeacherForcedScorer(ensure_model(spec.name))
        return self._scorer

    def _answer(self, editor: Any, probe: Probe) -> dict[str, Any]:
        t0 = time.perf_counter()
        if self.config.scoring == "teacher-forced":
            state = editor.prepare(probe.prompt, style="text")
            applied = [r.id for r in state.get("applied", [])]
            scorer = editor if hasattr(editor, "top1") else self.scorer  # parametric methods score their own weights
            tgt, preds = scorer.top1(state["request"], probe.targets[0] if probe.targets else "")
            return {"output": preds, "target_tokens": tgt, "applied": applied, "route": state.get("route"),
                    "ms": round((time.perf_counter() - t0) * 1000, 1), "request": state["request"]}
        if probe.messages:  # a conversation: the whole chat goes in, the last user turn is the question
            ans = editor.chat_answer(probe.messages, max_tokens=self.config.max_tokens)
        else:
            ans = editor.ask(probe.prompt, style=probe.style, max_tokens=self.config.max_tokens)
        row = {"output": ans.text, "applied": ans.applied, "route": ans.route, "ms": round((time.perf_counter() - t0) * 1000, 1),
               "model_calls": ans.model_calls}
        if ans.decomposed or ans.route_reason:
            row.update({"decomposed": ans.decomposed, "route_reason": ans.route_reason, "hops": ans.hops, "stop": ans.stop})
        return row

    def _score(self, probe: Probe, res: dict[str, Any], reference: dict[str, Any] | None) -> float:
        if self.config.scoring == "teacher-forced":
            if probe.kind == "locality":
                ref = reference["output"] if reference else []
                mine = res["output"]
                return sum(int(a == b) for a, b in zip(mine, ref)) / len(ref) if ref else 0.0
            tgt, preds = res["target_tokens"], res["output"]
            best = sum(int(a == b) for a, b in zip(tgt, preds)) / len(tgt) if tgt else 0.0
            return best
        if probe.kind == "locality":
            return float(agree(res["output"], reference["output"])) if reference else 0.0
        return float(gen_match(res["output"], probe.targets))

    # -- running -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        started = self.run_file.start()
        rows = Rows(self.out)
        probed_ids: dict[str, set[str]] = {}
        try:
            for name in self.config.datasets:
                cases, spare, probed = select_cases(load_dataset(name, self.config.data_dir), seed=self.config.seed,
                                                    limit=self.config.limit, probe_limit=self.config.probe_limit)
                probed_ids[name] = {c.case_id for c in probed}
                for size, probe_cases, mem_cases in sized_runs(cases, spare, probed, self.config.memory_sizes,
                                                               self.config.size_probe_cases):
                    self._run_size(name, size, probe_cases, mem_cases, rows)
        finally:
            rows.close()
            self.run_file.save(len(rows.rows))
        # the report covers the cases this configuration probes; rows of cases probed earlier by a wider run of the
        # same folder stay in cases.jsonl but are not mixed into tables whose other methods never saw those cases
        reported = [r for r in rows.rows if r["size"] != "all" or r["case_id"] in probed_ids.get(r["dataset"], ())]
        report = build_report(self.config, reported, embedder=self.embedder.name, started=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
                              wall_s=round(self.run_file.wall_s(), 1), processes=len(self.run_file.sessions) + 1,
                              model_calls=self.backend.calls, cache_hits=self.backend.hits,
                              model_calls_run=self.backend.size, cases=PACKED)
        write_report(self.out, report)
        rows.pack()
        return report

    def _run_size(self, dataset: str, size: str, probe_cases: list[Case], mem_cases: list[Case], rows: Rows) -> None:
        tmp = Path(tempfile.mkdtemp(prefix="agentedit-eval-"))
        self._facts = {e["id"]: _fact_key(e) for e in _edits_of(mem_cases)}
        lifelong = self.protocol.regime == "lifelong"
        try:
            memory = EditMemory("eval", root=tmp, embedder=self.embedder)
            self._restated = set()
            if lifelong:
                matcher = ConflictMatcher(self.embedder, conflict_at=default_calibration().relation_threshold)
                self._restated = _restated_later(memory.add_many(_edits_of(mem_cases), actor="eval"), mem_cases, matcher)
            methods = ["none"] + [m for m in self.config.methods if m != "none"]
            reference: dict[tuple[str, int], dict[str, Any]] = {}
            for method in methods:
                if not lifelong:  # a retracted edit keeps its id (history), so each method starts from an empty memory
                    memory.close()
                    memory = EditMemory("eval", root=tmp / method, embedder=self.embedder)
                editor = METHODS.get(method)(self.ctx, memory)
                jobs = [(c, i, p) for c in probe_cases for i, p in enumerate(c.probes) if self._wanted(p)]
                todo = [(c, i, p) for c, i, p in jobs if (dataset, method, size, c.case_id, i) not in rows.done
                        or (method == "none" and p.kind == "locality")]
                desc = f"{dataset} · {method} · {size} edits"
                if not lifelong:
                    self._single(editor, memory, dataset, method, size, probe_cases, todo, rows, reference, desc)
                else:
                    self._batch(editor, dataset, method, size, todo, len(jobs), rows, reference, desc)
            memory.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _wanted(self, probe: Probe) -> bool:
        return self.config.probe_kinds is None or probe.kind in self.config.probe_kinds

    def _record(self, dataset: str, method: str, size: str, case: Case, idx: int, probe: Probe, res: dict[str, Any],
                reference: dict[tuple[str, int], dict[str, Any]], rows: Rows) -> None:
        if self.run_file.due():  # a killed process loses at most this much of the run's wall time
            self.run_file.save(len(rows.rows))
        if method == "none":
            reference[(case.case_id, idx)] = res
        if (dataset, method, size, case.case_id, idx) in rows.done:
            return
        score = self._score(probe, res, reference.get((case.case_id, idx)))
        rows.add({"dataset": dataset, "method": method, "size": size, "case_id": case.case_id, "probe_idx": idx,
                  "kind": probe.kind, "subkind": probe.subkind, "group": probe.group, "prompt": probe.prompt,
                  "targets": probe.targets, "output": res["output"], "score": score, "applied": res["applied"],
                  "own_applied": self._own_applied(case, res["applied"]),
                  **({"restated_later": True} if case.case_id in self._restated and probe.kind != "locality" else {}),
                  "route": res["route"], "ms": res["ms"],
                  **{k: res[k] for k in ("model_calls", "decomposed", "route_reason", "hops", "stop") if k in res}})

    def _own_applied(self, case: Case, applied: list[str]) -> bool:
        """Whether an applied edit states one of the case's facts (MQuAKE cases share edits: a later
        copy of the same fact supersedes the earlier one and still counts)."""
        own = {_fact_key(e) for e in case.edits}
        return any(a in _edit_ids(case) or self._facts.get(a) in own for a in applied)

    def _batch(self, editor: Any, dataset: str, method: str, size: str, todo: list[tuple[Case, int, Probe]], total: int,
               rows: Rows, reference: dict[tuple[str, int], dict[str, Any]], desc: str) -> None:
        done = total - len(todo)
        self.progress(desc, done, total)

        def work(job: tuple[Case, int, Probe]) -> tuple[Case, int, Probe, dict[str, Any]]:
            c, i, p = job
            return c, i, p, self._answer(editor, p)

        if self.config.concurrency > 1:
            with ThreadPoolExecutor(self.config.concurrency) as pool:
                for c, i, p, res in pool.map(work, todo):
                    self._record(dataset, method, size, c, i, p, res, reference, rows)
                    done += 1
                    self.progress(desc, done, total)
        else:
            for job in todo:
                c, i, p, res = work(job)
                self._record(dataset, method, size, c, i, p, res, reference, rows)
                done += 1
                self.progress(desc, done, total)

    def _single(self, editor: Any, memory: EditMemory, dataset: str, method: str, size: str, cases: list[Case],
                todo: list[tuple[Case, int, Probe]], rows: Rows, reference: dict[tuple[str, int], dict[str, Any]],
                desc: str) -> None:
        by_case: dict[str, list[tuple[Case, int, Probe]]] = {}
        for job in todo:
            by_case.setdefault(job[0].case_id, []).append(job)
        for n, case in enumerate(cases):
            jobs = by_case.get(case.case_id, [])
            if not jobs:
                continue
            recs = memory.add_many(_edits_of([case]), actor="eval") if method != "none" else []
            try:
                for c, i, p in jobs:
                    self._record(dataset, method, size, c, i, p, self._answer(editor, p), reference, rows)
            finally:
                for r in recs:
                    if memory.get(r.id).status == "active":
                        memory.delete(r.id, actor="eval")
            self.progress(desc, n + 1, len(cases))

    def close(self) -> None:
        self.backend.close()


# RunConfig, METHODS, register_method and read_rows are imported from here by callers of the single-module runner.
__all__ = ["CASES", "EVAL_MARKER_SECRET", "METHODS", "PACKED", "EditorFactory", "Protocol", "ProgressFn", "RunConfig",
           "RunContext", "Runner", "Scoring", "fix_eval_marker", "read_rows", "register_method"]
