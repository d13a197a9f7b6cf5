"""Running methods side by side on benchmarks, writing results.json, cases.jsonl(.gz), summary.md and plots.

Protocols:

- ``lifelong`` (default, the headline): every case's edits are in memory at once, then every probe.
- ``single``: per case, its edits go in, its probes run, its edits are retracted.

Methods are names resolved by :data:`METHODS` into Editor settings; more (e.g.
parametric methods) plug in with :func:`register_method` as long as they
speak the :class:`~agentedit.editor.Editor` API. Locality is agreement with
the unedited model (``none``), which is always computed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from ..settings import env
from ..backends import resolve_backend
from ..errors import ConfigError
from ..memory import EditMemory, shared_embedder
from ..prompts import set_marker_secret
from ..scope import CHECKERS, DEFAULT_CHECKER, default_calibration
from .cache import CachedBackend
from .cases import Case, Probe
from .loaders import data_dir, load_dataset
from .scoring import TeacherForcedScorer, agree, gen_match, normalise

logger = logging.getLogger(__name__)

Protocol = Literal["lifelong", "single"]
Scoring = Literal["generation-match", "teacher-forced"]
ProgressFn = Callable[[str, int, int], None]
EVAL_MARKER_SECRET = "agentedit-evals"
EditorFactory = Callable[["RunContext", EditMemory], Any]


def fix_eval_marker() -> None:
    """Benchmarks derive the facts block's marker from a fixed secret (``$AGENTEDIT_MARKER_SECRET``, else
    :data:`EVAL_MARKER_SECRET`): every process that works on a run (a resumed run, a second method asking the same
    thing, a rerun of a script) then sends the same requests, which the run's cache of generations can answer."""
    set_marker_secret(env("AGENTEDIT_MARKER_SECRET") or EVAL_MARKER_SECRET)


@dataclass
class RunConfig:
    datasets: list[str]
    methods: list[str]
    model: str = "llamacpp:qwen2.5-coder-0.5b-instruct"
    api_base: str | None = None
    limit: int | None = None
    seed: int | None = None
    protocol: Protocol = "lifelong"
    scoring: Scoring = "generation-match"
    memory_sizes: list[int] = field(default_factory=list)
    size_probe_cases: int = 20
    max_tokens: int = 24
    concurrency: int = 1
    suite: str = "custom"
    data_dir: str | None = None
    demo_pool: str | None = None
    scope_model: str | None = None
    probe_limit: int | None = None  # probe only the first N cases, with every loaded case's edits in memory
    probe_kinds: list[str] | None = None  # run only probes of these kinds (e.g. portability); None: all

    def __post_init__(self) -> None:
        if self.probe_limit is not None and self.probe_limit < 1:
            raise ConfigError(f"probe_limit must be at least 1 (or left out to probe every case), got {self.probe_limit}")
        if self.probe_kinds is not None:
            from .cases import PROBE_KINDS

            unknown = sorted(set(self.probe_kinds) - set(PROBE_KINDS))
            if unknown or not self.probe_kinds:
                raise ConfigError(f"unknown probe kind(s) {', '.join(unknown) or '(none given)'}; "
                                  f"choose from {', '.join(PROBE_KINDS)}")

    def fingerprint(self, *, legacy: bool = False) -> str:
        """What a run folder's results depend on. Which probes are asked (``probe_limit``, ``probe_kinds``) is left
        out: results are kept per probe, so a run can be widened later (``legacy``: the fingerprint of runs made
        before that, which counted them)."""
        keep = {k: v for k, v in asdict(self).items() if k not in ("concurrency", "data_dir")}
        for optional in ("scope_model", "probe_limit", "probe_kinds"):
            if keep.get(optional) is None or (not legacy and optional != "scope_model"):
                keep.pop(optional, None)  # runs from before the option keep their fingerprint
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class RunContext:
    config: RunConfig
    backend: Any
    out: Path


def _in_context(scope: str, injection: str = "facts", **options: Any) -> EditorFactory:
    """An in-context method; ``options`` go to the Editor (single pass unless they say ``multihop``)."""
    options = {"multihop": "never", **options}

    def make(ctx: RunContext, memory: EditMemory) -> Any:
        from ..editor import Editor

        kw: dict[str, Any] = {}
        if injection == "ike":
            pool = ctx.config.demo_pool or str(data_dir(ctx.config.data_dir) / "counterfact" / "counterfact-train.json")
            kw = {"injection": "ike", "demo_pool": pool}
        if scope == "trained":
            kw["scope_model"] = ctx.config.scope_model
        return Editor(memory=memory, backend=ctx.backend, scope=scope, max_tokens=ctx.config.max_tokens, **options, **kw)

    return make


METHODS: dict[str, EditorFactory] = {
    "none": _in_context("none"),
    "prefix-all": _in_context("prefix-all"),
    "ike": _in_context("prefix-all", "ike"),
    "agentedit": _in_context(DEFAULT_CHECKER),
    **{f"agentedit-{c}": _in_context(c) for c in CHECKERS if c not in ("none", "prefix-all")},
    # Multi-hop: our decomposition (routing per question, the scope check settles each hop) and the MeLLo
    # protocol (every question decomposed, top-1 retrieved fact per sub-question, the model judges it).
    "agentedit-decompose": _in_context(DEFAULT_CHECKER, multihop="auto"),
    "mello": _in_context("prefix-all", multihop="always", resolve="model", follow_edits=False),
}


def register_method(name: str, factory: EditorFactory) -> None:
    """Make ``name`` usable in ``--methods``; ``factory(ctx, memory)`` returns an Editor-like object."""
    METHODS[name] = factory


def _edit_ids(case: Case) -> list[str]:
    return [f"{case.dataset}:{case.case_id}:{j}" for j in range(len(case.edits))]


def _fact_key(edit: dict[str, Any]) -> tuple[str, str]:
    return normalise(edit.get("prompt") or ""), normalise(edit["target_new"])


def _edits_of(cases: list[Case]) -> list[dict[str, Any]]:
    out = []
    for case in cases:
        for eid, e in zip(_edit_ids(case), case.edits):
            out.append({**{k: v for k, v in e.items() if v is not None}, "id": eid})
    return out


CASES = "cases.jsonl"
PACKED = CASES + ".gz"


def _parse_rows(text: str) -> list[dict[str, Any]]:
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short when a process was killed mid-write
            continue
    return rows


def read_rows(out: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The per-probe rows of a run folder: ``cases.jsonl`` while it runs, ``cases.jsonl.gz`` once it has finished."""
    plain, packed = Path(out) / CASES, Path(out) / PACKED
    if plain.exists():
        return _parse_rows(plain.read_text("utf-8"))
    if packed.exists():
        return _parse_rows(gzip.decompress(packed.read_bytes()).decode("utf-8"))
    raise FileNotFoundError(f"{out} holds no {CASES} or {PACKED}; is it an `agentedit eval` run folder?")


class _Rows:
    """cases.jsonl, appended as probes finish; already-finished keys are skipped on resume.

    A finished run is packed to cases.jsonl.gz (a full run's rows are several MB of repetitive JSON); resuming it
    unpacks it again first, so rows are only ever appended to the plain file.
    """

    def __init__(self, out: Path) -> None:
        self.path, self.packed = path, packed = out / CASES, out / PACKED
        if not path.exists() and packed.exists():
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(gzip.decompress(packed.read_bytes()))
            os.replace(tmp, path)
            packed.unlink()
        self.rows: list[dict[str, Any]] = _parse_rows(path.read_text("utf-8")) if path.exists() else []
        self.done = {self.key(r) for r in self.rows}
        self._fh = open(path, "a", encoding="utf-8")

    @staticmethod
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["dataset"], r["method"], r["size"], r["case_id"], r["probe_idx"])

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.done.add(self.key(row))
        self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def pack(self) -> None:
        """Compress the finished rows to cases.jsonl.gz (written whole, then swapped in) and drop the plain file."""
        self.close()
        tmp = self.packed.with_name(self.packed.name + ".tmp")
        tmp.write_bytes(gzip.compress(self.path.read_bytes(), mtime=0))
        os.replace(tmp, self.packed)
        self.path.unlink()


class Runner:
    def __init__(self, config: RunConfig, out: str | os.PathLike[str], *, progress: ProgressFn | None = None,
                 backend: Any = None) -> None:
        for m in config.methods:
            if m not in METHODS:
                raise ConfigError(f"unknown method {m!r}; known: {', '.join(METHODS)}")
        if config.protocol not in ("lifelong", "single"):
            raise ConfigError(f"unknown protocol {config.protocol!r}; use lifelong or single")
        if config.scoring not in ("generation-match", "teacher-forced"):
            raise ConfigError(f"unknown scoring {config.scoring!r}; use generation-match or teacher-forced")
        self.config = config
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        fix_eval_marker()
        self.progress = progress or (lambda desc, done, total: None)
        self._run_file = self.out / "run.json"
        prev: dict[str, Any] = {}
        if self._run_file.exists():
            prev = json.loads(self._run_file.read_text("utf-8"))
            if prev.get("fingerprint") not in (config.fingerprint(), config.fingerprint(legacy=True)):
                raise ConfigError(f"{self.out} holds results of a different configuration; use another --run-name or --fresh")
        # a run spread over several processes (stopped, resumed) reports the wall time they spent on it together
        self._spent_before = float(prev.get("wall_s_spent", 0.0))
        self._sessions: list[dict[str, Any]] = list(prev.get("sessions", []))
        self._started: float | None = None
        self._saved_at = 0.0
        self._save_run_file()
        inner = backend if backend is not None else resolve_backend(config.model, api_base=config.api_base, timeout=180,
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
            spec = self.config.model
            if spec.startswith("hf:"):
                self._scorer = resolve_backend(spec)  # type: ignore[assignment]  # LocalBackend has top1()
                return self._scorer  # type: ignore[return-value]
            if not spec.startswith("llamacpp:"):
                raise ConfigError("teacher-forced scoring needs the model's logits in-process: use a llamacpp:<name|file.gguf> model")
            from ..provision import ensure_model

            self._scorer = TeacherForcedScorer(ensure_model(spec.split(":", 1)[1]))
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
    def _cases(self, name: str) -> tuple[list[Case], list[Case]]:
        every = load_dataset(name, self.config.data_dir)
        if self.config.seed is not None:
            every = list(every)
            random.Random(self.config.seed).shuffle(every)
        limit = self.config.limit if self.config.limit is not None else len(every)
        return every[:limit], every[limit:]

    def _save_run_file(self, rows: int | None = None) -> None:
        sessions = list(self._sessions)
        if self._started is not None:
            self._saved_at = time.time()
            sessions.append({"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self._started)),
                             "wall_s": round(self._saved_at - self._started, 1), "rows_done": rows})
        tmp = self._run_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": self.config.fingerprint(), "config": asdict(self.config),
                                   "wall_s_spent": round(self._wall_s(), 1), "sessions": sessions}, indent=2), "utf-8")
        os.replace(tmp, self._run_file)

    def _wall_s(self) -> float:
        return self._spent_before + (time.time() - self._started if self._started is not None else 0.0)

    def run(self) -> dict[str, Any]:
        self._started = time.time()
        rows = _Rows(self.out)
        probed_ids: dict[str, set[str]] = {}
        try:
            for name in self.config.datasets:
                cases, spare = self._cases(name)
                probed = cases[: self.config.probe_limit] if self.config.probe_limit else cases
                probed_ids[name] = {c.case_id for c in probed}
                sizes = [("all", probed, cases)]
                for s in sorted(set(self.config.memory_sizes)):
                    probe_cases = cases[: min(s, self.config.size_probe_cases)]
                    extra = (cases[len(probe_cases):] + spare)[: max(0, s - len(probe_cases))]
                    sizes.append((str(s), probe_cases, probe_cases + extra))
                for size, probe_cases, mem_cases in sizes:
                    self._run_size(name, size, probe_cases, mem_cases, rows)
        finally:
            rows.close()
            self._save_run_file(len(rows.rows))
        # the report covers the cases this configuration probes; rows of cases probed earlier by a wider run of the
        # same folder stay in cases.jsonl but are not mixed into tables whose other methods never saw those cases
        reported = [r for r in rows.rows if r["size"] != "all" or r["case_id"] in probed_ids.get(r["dataset"], ())]
        report = self._report(reported, self._wall_s(), time.time() - self._started)
        from .report import write_report

        write_report(self.out, report)
        rows.pack()
        return report

    def _run_size(self, dataset: str, size: str, probe_cases: list[Case], mem_cases: list[Case], rows: _Rows) -> None:
        tmp = Path(tempfile.mkdtemp(prefix="agentedit-eval-"))
        self._facts = {e["id"]: _fact_key(e) for e in _edits_of(mem_cases)}
        lifelong = self.config.protocol == "lifelong"
        try:
            memory = EditMemory("eval", root=tmp, embedder=self.embedder)
            if lifelong:
                memory.add_many(_edits_of(mem_cases), actor="eval")
            methods = ["none"] + [m for m in self.config.methods if m != "none"]
            reference: dict[tuple[str, int], dict[str, Any]] = {}
            for method in methods:
                if not lifelong:  # a retracted edit keeps its id (history), so each method starts from an empty memory
                    memory.close()
                    memory = EditMemory("eval", root=tmp / method, embedder=self.embedder)
                editor = METHODS[method](self.ctx, memory)
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
                reference: dict[tuple[str, int], dict[str, Any]], rows: _Rows) -> None:
        if time.time() - self._saved_at >= 30:  # a killed process loses at most this much of the run's wall time
            self._save_run_file(len(rows.rows))
        if method == "none":
            reference[(case.case_id, idx)] = res
        if (dataset, method, size, case.case_id, idx) in rows.done:
            return
        score = self._score(probe, res, reference.get((case.case_id, idx)))
        rows.add({"dataset": dataset, "method": method, "size": size, "case_id": case.case_id, "probe_idx": idx,
                  "kind": probe.kind, "subkind": probe.subkind, "group": probe.group, "prompt": probe.prompt,
                  "targets": probe.targets, "output": res["output"], "score": score, "applied": res["applied"],
                  "own_applied": self._own_applied(case, res["applied"]),
                  "route": res["route"], "ms": res["ms"],
                  **{k: res[k] for k in ("model_calls", "decomposed", "route_reason", "hops", "stop") if k in res}})

    def _own_applied(self, case: Case, applied: list[str]) -> bool:
        """Whether an applied edit states one of the case's facts (MQuAKE cases share edits: a later
        copy of the same fact supersedes the earlier one and still counts)."""
        own = {_fact_key(e) for e in case.edits}
        return any(a in _edit_ids(case) or self._facts.get(a) in own for a in applied)

    def _batch(self, editor: Any, dataset: str, method: str, size: str, todo: list[tuple[Case, int, Probe]], total: int,
               rows: _Rows, reference: dict[tuple[str, int], dict[str, Any]], desc: str) -> None:
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
                todo: list[tuple[Case, int, Probe]], rows: _Rows, reference: dict[tuple[str, int], dict[str, Any]],
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

    # -- aggregation ---------------------------------------------------------------------------
    def _report(self, rows: list[dict[str, Any]], wall_s: float, this_process_s: float) -> dict[str, Any]:
        from ..evaluation.report import aggregate, machine

        cfg = self.config
        model = cfg.model
        if model.startswith("llamacpp:qwen2.5-coder-0.5b"):
            model = "qwen2.5-coder-0.5b-instruct (gguf q4_k_m)"
        elif model.startswith("llamacpp:smollm2"):
            model = "smollm2-135m-instruct (gguf q4_1)"
        datasets = {}
        for name in cfg.datasets:
            mine = [r for r in rows if r["dataset"] == name]
            n_all = len({r["case_id"] for r in mine if r["size"] == "all"})
            datasets[name] = {
                "dataset": name, "n_cases": n_all,
                "n_edits_in_memory": None if cfg.protocol == "single" else "all cases' edits",
                "methods": {m: aggregate([r for r in mine if r["method"] == m and r["size"] == "all"])
                            for m in ["none", *[x for x in cfg.methods if x != "none"]]},
                "by_size": {s: {m: aggregate([r for r in mine if r["method"] == m and r["size"] == str(s)])
                                for m in cfg.methods} for s in sorted(set(cfg.memory_sizes))},
            }
        return {"suite": cfg.suite, "model": model, "backend": "llama.cpp server" if cfg.model.startswith("llamacpp:") else
                "transformers" if cfg.model.startswith("hf:") else "litellm",
                "protocol": cfg.protocol, "scoring": cfg.scoring, "max_tokens": cfg.max_tokens, "limit": cfg.limit,
                "seed": cfg.seed, "embedder": self.embedder.name, "calibration_threshold": default_calibration().threshold,
                "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - this_process_s)),
                "wall_s": round(wall_s, 1), "processes": len(self._sessions) + 1,
                "model_calls": self.backend.calls, "cache_hits": self.backend.hits, "model_calls_run": self.backend.size,
                "datasets": datasets, "cases": PACKED}

    def close(self) -> None:
        self.backend.close()
