"""The :class:`Editor`: one object to record edits and get edited answers."""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .backends import DEFAULT_MODEL, resolve_backend
from .backends.base import Backend
from .errors import ConfigError, EditError
from .graph import WorkflowContext, build_graph
from .graph.state import Style
from .injection import DemoPool, InjectionMode
from .memory import DEFAULT_NAMESPACE, EditMemory
from .scope import CHECKERS, DEFAULT_CHECKER, Calibration, ScopeChecker, calibrate_similarity, default_calibration, make_checker
from .types import Answer, EditRecord

logger = logging.getLogger(__name__)


class Editor:
    """Record edits and ask questions that see them.

    >>> ed = Editor("openai/gpt-4o-mini")                       # doctest: +SKIP
    >>> rec = ed.edit("The Eiffel Tower is located in", "Rome", subject="Eiffel Tower")  # doctest: +SKIP
    >>> ed.ask("Which city is the Eiffel Tower in?").text       # doctest: +SKIP

    ``model`` is a litellm ``provider/model`` (``api_base`` for OpenAI-compatible
    servers), ``llamacpp:<name|file.gguf>``, or ``hf:<hub id|dir|file.gguf|name>`` for
    local weights; by default ``$AGENTEDIT_MODEL`` or the embedded Qwen2.5-Coder-0.5B-Instruct
    served by llama.cpp on 127.0.0.1. The model is only contacted (or started) when a
    question is asked: editing, listing and history work offline (except parametric edits).

    ``method`` picks the route of new edits: ``"in-context"`` (API models' only route), or a
    parametric editor for ``hf:`` models (``"rome"``, the default there, ``"memit"``, ``"ft"``,
    ``"alphaedit"``), which writes the edit into the weights; ``forget`` restores them.
    """

    def __init__(self, model: str | None = None, *, api_base: str | None = None, api_key: str | None = None,
                 store: str = "default", store_dir: str | os.PathLike[str] | None = None, namespace: str = DEFAULT_NAMESPACE,
                 scope: str = DEFAULT_CHECKER, injection: InjectionMode = "facts", demo_pool: str | os.PathLike[str] | None = None,
                 k: int = 4, max_edits: int = 4, timeout: float = 60.0, max_retries: int = 2, temperature: float = 0.0,
                 max_tokens: int = 256, chroma_url: str | None = None, memory: EditMemory | None = None,
                 backend: Backend | None = None, progress: Callable[[str], None] | None = None,
                 method: str | None = None, editor_configs: Mapping[str, Any] | None = None,
                 scope_model: str | os.PathLike[str] | None = None, multihop: str = "auto", hop_limit: int = 4,
                 resolve: str = "edit", follow_edits: bool = True, decompose: str = "auto",
                 stats_corpus: str | os.PathLike[str] | None = None) -> None:
        if scope not in CHECKERS:
            raise ConfigError(f"unknown scope checker {scope!r}; choose one of {', '.join(CHECKERS)}")
        if injection not in ("facts", "ike"):
            raise ConfigError(f"unknown injection mode {injection!r}; choose 'facts' or 'ike'")
        if injection == "ike" and demo_pool is None:
            raise ConfigError("injection='ike' needs demo_pool= (a CounterFact-shaped training file such as counterfact-train.json)")
        if k < 1 or max_edits < 1:
            raise ConfigError("k and max_edits must be at least 1")
        if multihop not in ("never", "always", "auto"):
            raise ConfigError(f"unknown multihop mode {multihop!r}; choose 'auto', 'always' or 'never'")
        if resolve not in ("edit", "model"):
            raise ConfigError(f"unknown resolve mode {resolve!r}; choose 'edit' (an in-scope edit wins) or 'model' (MeLLo)")
        if not 1 <= hop_limit <= 16:
            raise ConfigError(f"hop_limit must be between 1 and 16, got {hop_limit}")
        self.multihop, self.hop_limit, self.resolve, self.follow_edits = multihop, hop_limit, resolve, follow_edits
        if decompose not in ("auto", "model", "rules", "off"):
            raise ConfigError(f"unknown decompose mode {decompose!r}; choose 'auto', 'model', 'rules' or 'off'")
        self.decompose = decompose
        self.model = model or os.environ.get("AGENTEDIT_MODEL") or DEFAULT_MODEL
        self.api_base, self.api_key = api_base, api_key
        self.namespace = namespace
        self.scope_name = scope
        self.injection: InjectionMode = injection
        self.k, self.max_edits = k, max_edits
        self.timeout, self.max_retries = timeout, max_retries
        self.params = {"temperature": temperature, "max_tokens": max_tokens}
        self.memory = memory or EditMemory(store, root=store_dir, chroma_url=chroma_url)
        self._backend = backend
        self._owns_backend = backend is None
        self._checker: ScopeChecker | None = None
        self._demo_pool_path = demo_pool
        self._demos: DemoPool | None = None
        self._progress = progress
        self._graph = build_graph().compile()
        self._method = method
        self._editor_configs = editor_configs
        self._scope_model = Path(scope_model) if scope_model is not None else None
        self._weights: Any = None
        self._stats_corpus = Path(stats_corpus) if stats_corpus is not None else None
        if self._stats_corpus is not None and not self._stats_corpus.is_file():
            raise ConfigError(f"stats corpus {self._stats_corpus} is not a file; give a UTF-8 text file (prose like the "
                              "model's domain) for the ROME/MEMIT statistics, or leave it out to use text sampled from the model")

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = resolve_backend(self.model, api_base=self.api_base, api_key=self.api_key, timeout=self.timeout,
                                            max_retries=self.max_retries, default_params=self.params, progress=self._progress)
        return self._backend

    @property
    def method(self) -> str:
        """The route of new edits: ``"in-context"`` or a parametric editor's name."""
        from .parametric.route import default_method

        if self._method is None:  # decided without resolving an API model's backend: editing stays offline
            local = self._backend is not None or self.model.startswith("hf:")
            self._method = default_method(self.backend) if local else "in-context"
        if self._method != "in-context":
            from .parametric import METHODS

            if self._method not in METHODS:
                raise ConfigError(f"unknown method {self._method!r}; choose 'in-context' or one of {', '.join(METHODS)}")
            if not self.backend.capabilities.editable_weights:
                raise ConfigError(f"method {self._method!r} edits weights, which {self.model!r} does not expose; "
                                  "use a local model (hf:...) or method='in-context'")
        return self._method

    @property
    def weights(self) -> Any:
        """The parametric route (:class:`~agentedit.parametric.route.WeightRoute`), for models with editable weights."""
        if self._weights is None:
            if not self.backend.capabilities.editable_weights:
                raise ConfigError(f"{self.model!r} has no editable weights; parametric edits need an hf: model")
            from .parametric.route import WeightRoute

            corpus = None
            if self._stats_corpus is not None:
                from .parametric.corpus import TextCorpus

                corpus = TextCorpus(self._stats_corpus)
            self._weights = WeightRoute(self.memory, self.backend, corpus=corpus, configs=self._editor_configs)
        return self._weights

    def _sync_weights(self) -> None:
        """Re-apply the store's weight edits before the first question (local models only)."""
        if (self._backend is not None or self.model.startswith("hf:")) and self.backend.capabilities.editable_weights:
            self.weights.load()

    @property
    def scope_model_dir(self) -> Path:
        """Where the trained scope model lives: ``scope_model=`` if given, else the store's ``scope-model`` folder."""
        from .scope.trained import MODEL_DIRNAME

        return self._scope_model if self._scope_model is not None else self.memory.dir / MODEL_DIRNAME

    @property
    def calibration(self) -> Calibration:
        saved = self.memory.config.get("scope", {}).get("calibration")
        return Calibration.from_dict(saved) if saved else default_calibration()

    @property
    def checker(self) -> ScopeChecker:
        if self._checker is None:
            needs_backend = self.scope_name in ("judge", "cascade")
            self._checker = make_checker(self.scope_name, calibration=self.calibration,
                                         backend=self.backend if needs_backend else None,
                                         embedder=self.memory.embedder, max_edits=self.max_edits,
                                         model_dir=self.scope_model_dir)
        return self._checker

    def _context(self, *, with_backend: bool = True) -> WorkflowContext:
        self._sync_weights()
        if self.injection == "ike" and self._demos is None:
            from .provision import cache_dir

            self._demos = DemoPool.from_counterfact(self._demo_pool_path, self.memory.embedder,  # type: ignore[arg-type]
                                                    cache_dir=cache_dir() / "demos")
        backend = self.backend if with_backend else None
        return WorkflowContext(memory=self.memory, backend=backend, checker=self.checker, k=self.k,  # type: ignore[arg-type]
                               injection=self.injection, demos=self._demos, multihop=self.multihop,
                               hop_limit=self.hop_limit, resolve=self.resolve, follow_edits=self.follow_edits)

    def close(self) -> None:
        """Stop an embedded model server this Editor started and close the store."""
        if self._backend is not None and self._owns_backend:
            self._backend.close()
        self.memory.close()

    def __enter__(self) -> "Editor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- edits ---------------------------------------------------------------------------------
    def edit(self, prompt: str | None = None, target_new: str | None = None, *, subject: str | None = None,
             statement: str | None = None, target_old: str | None = None, namespace: str | None = None,
             id: str | None = None, aliases: Sequence[str] | None = None, metadata: Mapping[str, Any] | None = None,
             actor: str = "user") -> EditRecord:
        """Record one edit, benchmark-shaped (prompt + target_new [+ subject]) or as a plain ``statement``."""
        data: dict[str, Any] = {k: v for k, v in dict(prompt=prompt, subject=subject, statement=statement,
                                                         target_old=target_old, id=id, metadata=metadata).items() if v is not None}
        if target_new is not None or prompt is not None:
            data["target_new"] = target_new
        if aliases:
            data["aliases"] = list(aliases)
        data = self._with_anatomy(data, use_model=self._decompose_with_model())
        if self.method != "in-context":
            return self.edit_many([data], namespace=namespace, actor=actor)[0]
        return self.memory.add(data, namespace=namespace or self.namespace, actor=actor)

    def _decompose_with_model(self) -> bool:
        """Whether free-text facts go to the model for decomposition: ``model``, or ``auto`` with a hosted API model."""
        if self.decompose == "model":
            return True
        hosted = not self.model.startswith(("llamacpp:", "hf:")) and self.api_base is None and self._backend is None
        return self.decompose == "auto" and hosted

    def _with_anatomy(self, data: Mapping[str, Any] | EditRecord, *, use_model: bool) -> Any:
        """A plain statement with no subject gets its subject, relation and target (see :mod:`agentedit.anatomy`)."""
        if self.decompose == "off" or not isinstance(data, Mapping):
            return data
        statement = data.get("statement")
        if not isinstance(statement, str) or data.get("prompt") or data.get("subject") or data.get("requested_rewrite"):
            return data
        from .anatomy import decompose

        found = decompose(statement, self.backend if use_model else None)
        if found is None:
            return data
        meta = data.get("metadata")
        if meta is not None and not isinstance(meta, Mapping):
            return data  # build_record will say what is wrong with it
        meta = {**(meta or {}), "anatomy": found.source}
        return {**data, "subject": found.subject, "prompt": found.prompt, "target_new": data.get("target_new") or found.target,
                "metadata": meta}

    def edit_many(self, records: Iterable[Mapping[str, Any] | EditRecord], *, namespace: str | None = None,
                  actor: str = "user", progress: Callable[[int, int], None] | None = None) -> list[EditRecord]:
        """Record a batch atomically: a bad record fails the batch (with its index) and nothing is written.

        Plain statements get their anatomy from the offline rules (``decompose="model"`` asks the model for each).
        """
        use_model = self.decompose == "model"
        records = [self._with_anatomy(r, use_model=use_model) for r in records]
        if self.method != "in-context":
            return self.weights.edit_many(records, method=self.method, namespace=namespace or self.namespace, actor=actor,
                                          progress=progress)
        return self.memory.add_many(records, namespace=namespace or self.namespace, actor=actor, progress=progress)

    def update(self, edit_id: str, *, namespace: str | None = None, actor: str = "user", **changes: Any) -> EditRecord:
        if self.memory.get(edit_id, namespace=namespace).method != "in-context":
            raise EditError(f"edit {edit_id!r} lives in the weights and cannot be changed in place; forget it and edit again")
        return self.memory.update(edit_id, changes, namespace=namespace, actor=actor)

    def forget(self, edit_id: str, *, namespace: str | None = None, actor: str = "user") -> EditRecord:
        """Retract an edit: later queries no longer see it (a weight edit is reverted); its history is kept."""
        if self.memory.get(edit_id, namespace=namespace).method != "in-context":
            return self.weights.forget(edit_id, namespace=namespace, actor=actor)
        return self.memory.delete(edit_id, namespace=namespace, actor=actor)

    def edits(self, namespace: str | None = None, *, subject: str | None = None, text: str | None = None,
              include_inactive: bool = False, limit: int | None = None) -> list[EditRecord]:
        return self.memory.list(namespace=namespace, subject=subject, text=text, include_inactive=include_inactive, limit=limit)

    def history(self, edit_id: str, *, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.memory.history(edit_id, namespace=namespace)

    def import_edits(self, path: str | os.PathLike[str], *, namespace: str | None = None,
                     progress: Callable[[int, int], None] | None = None) -> list[EditRecord]:
        return self.memory.import_file(path, namespace=namespace or self.namespace, progress=progress)

    def export_edits(self, path: str | os.PathLike[str], *, namespace: str | None = None, include_inactive: bool = False) -> int:
        return self.memory.export_file(path, namespace=namespace, include_inactive=include_inactive)

    def calibrate(self, data: str | os.PathLike[str], *, objective: str = "recall@specificity", target_specificity: float = 0.98,
                  n_cases: int = 2000, seed: int = 0) -> Calibration:
        """Calibrate the scope thresholds on a training file and save them with the store."""
        cal = calibrate_similarity(Path(data), self.memory.embedder, n_cases=n_cases, objective=objective,  # type: ignore[arg-type]
                                   target_specificity=target_specificity, seed=seed, progress=self._progress)
        self.memory.config.setdefault("scope", {})["calibration"] = cal.to_dict()
        self.memory.save_config()
        self._checker = None
        return cal

    def train_scope(self, data: str | os.PathLike[str], *, minutes: float = 15.0, seed: int = 0,
                    target_specificity: float = 0.98, threads: int | None = None) -> Any:
        """Train the ``trained`` scope checker on a CounterFact-shaped file; its model is saved with the store."""
        from .scope.training import train_scope_model

        report = train_scope_model(Path(data), self.scope_model_dir, self.memory.embedder, minutes=minutes, seed=seed,
                                   target_specificity=target_specificity, threads=threads, progress=self._progress)
        self._checker = None
        return report

    # -- questions -----------------------------------------------------------------------------
    def _state(self, *, messages: Sequence[dict[str, Any]] | None, prompt: str | None, namespace: str | None,
               style: Style, params: dict[str, Any]) -> dict[str, Any]:
        ns = self.memory.require_namespace(namespace or self.namespace)
        if style not in ("chat", "complete", "text"):
            raise ConfigError(f"unknown style {style!r}; use 'chat', 'complete' or 'text'")
        state: dict[str, Any] = {"namespace": ns, "style": style, "params": {k: v for k, v in params.items() if v is not None}}
        if style == "chat":
            if not messages:
                raise ConfigError("no messages to send: give at least one user message")
            for i, m in enumerate(messages):
                if not isinstance(m, Mapping) or "role" not in m:
                    raise ConfigError(f"message #{i} must be an object with 'role' and 'content'")
            state["messages"] = [dict(m) for m in messages]
        else:
            if not prompt or not prompt.strip():
                raise ConfigError("the prompt is empty")
            state["prompt"] = prompt
        return state

    def _answer(self, out: dict[str, Any], started: float) -> Answer:
        timings = dict(out.get("timings", {}))
        timings["total"] = round((time.perf_counter() - started) * 1000.0, 3)
        comp = out["completion"]
        req = out.get("request")
        applied, route = [r.id for r in out.get("applied", [])], out.get("route", "passthrough")
        if route == "passthrough" and self._weights is not None:  # edits in the weights answer this question
            named = self._weights.mentioned(str(out.get("query", "")), out.get("namespace"))
            applied, route = (named, "parametric") if named else (applied, route)
        decomposed = route == "multi-hop"
        return Answer(text=comp.text, applied=applied, route=route,
                      timings=timings, decisions=list(out.get("decisions", [])),
                      messages=[] if decomposed else req if isinstance(req, list) else [{"role": "prompt", "content": req}],
                      model=comp.model or getattr(self.backend, "name", self.model), usage=comp.usage,
                      decomposed=decomposed, route_reason=str(out.get("route_reason", "")), hops=list(out.get("hops", [])),
                      stop=str(out.get("stop", "")), model_calls=int(out.get("model_calls", 0)) if decomposed else 1)

    def ask(self, question: str, *, namespace: str | None = None, style: Style = "chat", system: str | None = None,
            **params: Any) -> Answer:
        """Ask one question (``style="complete"`` for a sentence prefix, ``"text"`` for a raw completion)."""
        started = time.perf_counter()
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
        state = self._state(messages=messages if style == "chat" else None, prompt=question, namespace=namespace,
                            style=style, params=params)
        return self._answer(self._graph.invoke(state, context=self._context()), started)

    async def aask(self, question: str, *, namespace: str | None = None, style: Style = "chat", system: str | None = None,
                   **params: Any) -> Answer:
        started = time.perf_counter()
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
        state = self._state(messages=messages if style == "chat" else None, prompt=question, namespace=namespace,
                            style=style, params=params)
        return self._answer(await self._graph.ainvoke(state, context=self._context()), started)

    def prepare(self, question: str, *, namespace: str | None = None, style: Style = "chat",
                system: str | None = None) -> dict[str, Any]:
        """Run retrieve, scope and compose without calling the model.

        Returns the state: ``request`` (messages, or the prompt text for ``style="text"``), ``applied``
        (records), ``decisions``, ``route`` and ``timings``. Used for teacher-forced scoring and dry runs.
        """
        from langgraph.runtime import Runtime

        from .graph import nodes

        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
        state: dict[str, Any] = self._state(messages=messages if style == "chat" else None, prompt=question,
                                            namespace=namespace, style=style, params={})
        runtime = Runtime(context=self._context(with_backend=False))
        for node in (nodes.retrieve, nodes.scope, nodes.compose):
            update = node(state, runtime)  # type: ignore[arg-type]
            timings = {**state.get("timings", {}), **update.pop("timings", {})}
            state.update(update, timings=timings)
        return state

    def chat_answer(self, messages: Sequence[dict[str, Any]], *, namespace: str | None = None, **params: Any) -> Answer:
        started = time.perf_counter()
        state = self._state(messages=messages, prompt=None, namespace=namespace, style="chat", params=params)
        return self._answer(self._graph.invoke(state, context=self._context()), started)

    async def achat_answer(self, messages: Sequence[dict[str, Any]], *, namespace: str | None = None, **params: Any) -> Answer:
        started = time.perf_counter()
        state = self._state(messages=messages, prompt=None, namespace=namespace, style="chat", params=params)
        return self._answer(await self._graph.ainvoke(state, context=self._context()), started)

    def chat(self, messages: Sequence[dict[str, Any]], *, namespace: str | None = None, **params: Any) -> dict[str, Any]:
        """OpenAI-shaped in, OpenAI-shaped out (``chat.completion``), plus an ``agentedit`` field."""
        return openai_response(self.chat_answer(messages, namespace=namespace, **params))

    async def achat(self, messages: Sequence[dict[str, Any]], *, namespace: str | None = None, **params: Any) -> dict[str, Any]:
        return openai_response(await self.achat_answer(messages, namespace=namespace, **params))


def openai_response(ans: Answer) -> dict[str, Any]:
    """Render an :class:`Answer` as an OpenAI ``chat.completion`` object."""
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": ans.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ans.text}, "finish_reason": "stop"}],
        "usage": ans.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "agentedit": {"applied": ans.applied, "route": ans.route, "timings": ans.timings},
    }
