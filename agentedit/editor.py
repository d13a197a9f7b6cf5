"""The :class:`Editor`: one object to record edits and get edited answers. Every entry point (the CLI,
the HTTP proxy, the LangChain tools, the LangGraph node) calls its public verbs and nothing below it."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .backends.base import Backend
from .errors import ConfigError, EditError, UnknownNamespaceError
from .graph import Prepared, Workflow, WorkflowContext
from .graph.state import Style
from .injection import DemoPool
from .memory import EditMemory, shared
from .records import build_records, read_edit_file, validate_namespace
from .routes import IN_CONTEXT, EditRoute, Routes
from .scope import Calibration, ScopeChecker, default_calibration, make_checker
from .scope.conflict import ConflictMatcher
from .questions import openai_response
from .settings import SCOPE_MODEL_DIRNAME, ModelSpec, Settings
from .tuning import ScopeTuning
from .types import Answer, Conflict, EditRecord

logger = logging.getLogger(__name__)


class Editor(ScopeTuning):
    """Record edits and ask questions that see them.

    >>> ed = Editor("openai/gpt-4o-mini")                       # doctest: +SKIP
    >>> rec = ed.edit("The Eiffel Tower is located in", "Rome", subject="Eiffel Tower")  # doctest: +SKIP
    >>> ed.ask("Which city is the Eiffel Tower in?").text       # doctest: +SKIP

    ``model`` is a litellm ``provider/model`` (``api_base=`` for OpenAI-compatible servers),
    ``llamacpp:<name|file.gguf>``, or ``hf:<hub id|dir|file.gguf|name>`` for local weights; by default
    ``$AGENTEDIT_MODEL`` or the embedded Qwen2.5-Coder-0.5B-Instruct served by llama.cpp on 127.0.0.1.
    The model is only contacted (or started) when a question is asked: editing, listing and history
    work offline (except weight edits).

    Settings come as one :class:`~agentedit.settings.Settings` (``settings=``) and/or flat keywords
    (``k=8``, ``scope="trained"``, ``method="memit"``...; see :data:`agentedit.settings.FLAT`).
    ``method`` picks the route of new edits: ``"in-context"`` (API models' only route), or a parametric
    method for ``hf:`` models (``"rome"``, the default there, ``"memit"``, ``"ft"``, ``"alphaedit"``),
    which writes the edit into the weights; ``forget`` restores them.
    """

    def __init__(self, model: str | ModelSpec | None = None, *, settings: Settings | None = None,
                 memory: EditMemory | None = None, backend: Backend | None = None,
                 progress: Callable[[str], None] | None = None, **flat: Any) -> None:
        if settings is None:
            settings = Settings.from_env(model, **flat)
        else:
            settings = settings.replace(model=model, **flat)
        self.settings = settings
        s = settings.store
        self.memory = memory or EditMemory(s.name, root=s.root, chroma_url=s.chroma_url, database_url=s.database_url,
                                           vector_index=s.vector_index)
        self._backend = backend
        self._owns_backend = backend is None
        self._progress = progress
        self._checker: ScopeChecker | None = None
        self._demos: DemoPool | None = None
        self._method = settings.weights.method
        self.routes = Routes(self.memory, self._make_weight_route)
        self.workflow = Workflow()
        self._matcher: ConflictMatcher | None = None
        self.memory.matcher = self.matcher

    @property
    def matcher(self) -> ConflictMatcher:
        """Decides whether two edits state the same fact: a correction supersedes, an uncertain match is a conflict."""
        if self._matcher is None:
            self._matcher = ConflictMatcher(self.memory.embedder, conflict_at=self.calibration.relation_threshold)
        return self._matcher

    # -- settings, read-only views ---------------------------------------------------------------
    @property
    def spec(self) -> ModelSpec:
        return self.settings.model.spec

    @property
    def model(self) -> str:
        return str(self.spec)

    @property
    def namespace(self) -> str:
        return self.settings.store.namespace

    @property
    def params(self) -> dict[str, Any]:
        """Generation parameters sent with every question unless the call overrides them."""
        return self.settings.model.params()

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        if self._backend is None:
            from .backends import make_backend

            self._backend = make_backend(self.settings.model, default_params=self.params, progress=self._progress)
        return self._backend

    @property
    def _local_weights(self) -> bool:
        """Whether the model's weights can be edited, decided without starting an API model's backend."""
        if self._backend is None and not self.spec.editable_weights:
            return False
        return bool(self.backend.capabilities.editable_weights)

    @property
    def method(self) -> str:
        """The route of new edits: ``"in-context"`` or a parametric method's name."""
        from .routes.weights import check_method

        if self._method is None:
            self._method = "rome" if self._local_weights else IN_CONTEXT
        if self._method != IN_CONTEXT:
            check_method(self._method, self.backend, self.model)
        return self._method

    def _make_weight_route(self) -> EditRoute | None:
        if not self._local_weights:
            return None
        from .routes.weights import WeightRoute

        corpus = None
        if self.settings.weights.stats_corpus is not None:
            from .parametric.corpus import TextCorpus

            corpus = TextCorpus(Path(self.settings.weights.stats_corpus))
        route = WeightRoute(self.memory, self.backend, corpus=corpus, configs=self.settings.weights.configs)
        return route  # type: ignore[return-value]

    @property
    def weights(self) -> Any:
        """The weight route (:class:`~agentedit.routes.weights.WeightRoute`), for models with editable weights."""
        route = self.routes.weights
        if route is None:
            raise ConfigError(f"{self.model!r} has no editable weights; weight edits need an hf: model")
        return route

    @property
    def scope_model_dir(self) -> Path:
        """Where the trained scope model lives: ``scope_model=`` if given, else the store's ``scope-model`` folder."""
        return self.settings.scope.model_folder(Path(self.memory.dir))

    @property
    def calibration(self) -> Calibration:
        saved = self.memory.config.get("scope", {}).get("calibration")
        return Calibration.from_dict(saved) if saved else default_calibration()

    @property
    def checker(self) -> ScopeChecker:
        if self._checker is None:
            sc = self.settings.scope
            needs_backend = sc.checker in ("judge", "cascade")
            if sc.model_dir is None:  # a replica of a shared store: the model another replica trained
                shared.materialize(self.memory.ledger, SCOPE_MODEL_DIRNAME, self.scope_model_dir)
            self._checker = make_checker(sc.checker, calibration=self.calibration,
                                         backend=self.backend if needs_backend else None,
                                         embedder=self.memory.embedder, max_edits=sc.max_edits,
                                         model_dir=self.scope_model_dir)
        return self._checker

    def _context(self, *, with_backend: bool = True, multihop: str | None = None) -> WorkflowContext:
        from .questions import workflow_context  # what the workflow's nodes get

        return workflow_context(self, with_backend=with_backend, multihop=multihop)

    @property
    def database(self) -> str | None:
        """A shared store's database (its PostgreSQL URL without password); None for SQLite files."""
        return self.memory.ledger.path if self.memory.ledger.shared else None

    def recover(self) -> dict[str, int] | None:
        """Heal a shared store's index if one of its writers died mid-write (replicas call this now and then)."""
        return self.memory.recover()

    def warm(self) -> None:
        """Load the embedder and the scope checker, and make the backend ready (an embedded server starts here)."""
        self.memory.embedder.embed_one("warm up")
        _ = self.checker
        warm = getattr(self.backend, "warm", None)
        if callable(warm):
            warm()

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
        return self.edit_record(data, namespace=namespace, actor=actor)

    def edit_record(self, data: Mapping[str, Any] | EditRecord, *, namespace: str | None = None,
                    actor: str = "user") -> EditRecord:
        """Record one edit given as a record object (the shape of ``/v1/edits`` and of an import file's lines). A plain
        statement gets its anatomy the way ``anatomy=`` says (a hosted API model is asked under ``auto``)."""
        return self._write(self._anatomise([data], single=True), namespace=namespace, actor=actor)[0]

    def edit_many(self, records: Iterable[Mapping[str, Any] | EditRecord], *, namespace: str | None = None,
                  actor: str = "user", progress: Callable[[int, int], None] | None = None) -> list[EditRecord]:
        """Record a batch atomically: a bad record fails the batch (with its index) and nothing is written.

        Plain statements get their anatomy from the parser or rules (``anatomy="model"`` asks the model for each)."""
        return self._write(self._anatomise(list(records)), namespace=namespace, actor=actor, progress=progress)

    def import_edits(self, path: str | os.PathLike[str], *, namespace: str | None = None, actor: str = "import",
                     progress: Callable[[int, int], None] | None = None) -> list[EditRecord]:
        """Import a JSONL/JSON/CSV file atomically; an error names the file's offending line and nothing is written."""
        items, labels = read_edit_file(path)
        try:
            return self._write(self._anatomise(items, labels=labels), namespace=namespace, actor=actor, progress=progress,
                               labels=labels)
        except EditError as exc:
            raise type(exc)(f"{path}: {exc}") from None

    def parse_statement(self, statement: str) -> dict[str, Any]:
        """What :meth:`edit` would record for ``statement`` (subject, prompt, relation, target, review metadata), not
        recorded: :meth:`edit_record` records it as shown."""
        return dict(self._anatomise([{"statement": statement}], single=True)[0])

    def _anatomise(self, items: Sequence[Any], *, single: bool = False, labels: Sequence[str] | None = None) -> list[Any]:
        from .anatomy_step import with_anatomies
        return with_anatomies(items, self.settings.anatomy.mode, self._anatomy_backend(single=single),
                              review_below=self.settings.anatomy.review_below, labels=labels)

    def _anatomy_backend(self, *, single: bool) -> Backend | None:
        """The model to parse statements with: ``model`` mode always; ``auto`` for single edits to a hosted API model."""
        mode = self.settings.anatomy.mode
        if mode == "model" or (mode == "auto" and single and self.spec.hosted and self._owns_backend):
            return self.backend
        return None

    def _write(self, items: Sequence[Mapping[str, Any] | EditRecord], *, namespace: str | None, actor: str,
               progress: Callable[[int, int], None] | None = None, labels: list[str] | None = None) -> list[EditRecord]:
        ns = validate_namespace(namespace or self.namespace)
        recs = build_records(items, namespace=ns, actor=actor, labels=labels)
        method = self.method
        return self.routes.for_method(method).write(recs, method=method, namespace=ns, actor=actor, progress=progress)

    def update(self, edit_id: str, *, namespace: str | None = None, actor: str = "user",
               expected_version: int | None = None, **changes: Any) -> EditRecord:
        """Change an active edit in place (in-context edits; a weight edit is forgotten and made again).

        ``expected_version``: only if the edit is still at that version (``EditRecord.version``), else
        :class:`~agentedit.errors.VersionConflictError`; an edit retracted or superseded meanwhile raises
        :class:`~agentedit.errors.EditConflictError`. Nothing is written in either case."""
        rec = self.memory.get(edit_id, namespace=namespace)
        return self.routes.of(rec).update(edit_id, changes, namespace=rec.namespace, actor=actor,
                                          expected_version=expected_version)

    def forget(self, edit_id: str, *, namespace: str | None = None, actor: str = "user",
               expected_version: int | None = None) -> EditRecord:
        """Retract an edit: later queries no longer see it (a weight edit is reverted); its history is kept.

        ``expected_version`` as for :meth:`update`."""
        rec = self.memory.get(edit_id, namespace=namespace)
        return self.routes.of(rec).retract(edit_id, namespace=rec.namespace, actor=actor, expected_version=expected_version)

    def get(self, edit_id: str, *, namespace: str | None = None) -> EditRecord:
        return self.memory.get(edit_id, namespace=namespace)

    def edits(self, namespace: str | None = None, *, subject: str | None = None, text: str | None = None,
              include_inactive: bool = False, limit: int | None = None, offset: int = 0,
              review: bool = False, created: tuple[str | None, str | None] = (None, None)) -> list[EditRecord]:
        """Edits of a namespace (all namespaces with ``namespace=None``); a namespace never written to has none.
        ``review``: only those whose statement parse waits for review (``metadata.needs_review``); ``created``: only
        those created in ``[from, before)`` (ISO days or times; either end None), in creation order."""
        try:
            return self.memory.list(namespace=namespace, subject=subject, text=text, include_inactive=include_inactive,
                                    limit=limit, offset=offset, review=review, created=created)
        except UnknownNamespaceError:
            return []

    def count(self, namespace: str | None = None) -> int:
        """Active edits in ``namespace`` (every namespace with None)."""
        return self.memory.count(namespace)

    def namespaces(self) -> list[str]:
        return self.memory.namespaces()

    def create_namespace(self, name: str) -> None:
        self.memory.create_namespace(name)

    def history(self, edit_id: str, *, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.memory.history(edit_id, namespace=namespace)

    def conflicts(self, namespace: str | None = None, *, include_resolved: bool = False) -> list[Conflict]:
        """Possible conflicts a write reported (two active edits that may state the same fact), oldest first."""
        return self.memory.conflicts(namespace, include_resolved=include_resolved)

    def resolve_conflict(self, conflict_id: str, keep: str, *, namespace: str | None = None, actor: str = "user") -> Conflict:
        """Settle a conflict: ``keep="new"``/``"old"`` (or an edit id) supersedes the other edit, ``"both"`` keeps both."""
        return self.memory.resolve_conflict(conflict_id, keep, namespace=validate_namespace(namespace or self.namespace),
                                            actor=actor)

    def export_edits(self, path: str | os.PathLike[str], *, namespace: str | None = None, include_inactive: bool = False) -> int:
        return self.memory.export_file(path, namespace=namespace, include_inactive=include_inactive)

    # -- questions -----------------------------------------------------------------------------
    def _state(self, *, messages: Sequence[dict[str, Any]] | None, prompt: str | None, namespace: str | None,
               style: Style, params: dict[str, Any]) -> dict[str, Any]:
        from .questions import initial_state

        return initial_state(messages=messages, prompt=prompt, namespace=validate_namespace(namespace or self.namespace),
                             style=style, params=params)

    def _answer(self, out: dict[str, Any], started: float) -> Answer:
        from .questions import answer_from_state

        return answer_from_state(out, started, model=getattr(self.backend, "name", self.model))

    @staticmethod
    def _messages(question: str, system: str | None) -> list[dict[str, Any]]:
        return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]

    def ask(self, question: str, *, namespace: str | None = None, style: Style = "chat", system: str | None = None,
            **params: Any) -> Answer:
        """Ask one question (``style="complete"`` for a sentence prefix, ``"text"`` for a raw completion)."""
        started = time.perf_counter()
        state = self._state(messages=self._messages(question, system) if style == "chat" else None, prompt=question,
                            namespace=namespace, style=style, params=params)
        return self._answer(self.workflow.run(state, self._context()), started)

    async def aask(self, question: str, *, namespace: str | None = None, style: Style = "chat", system: str | None = None,
                   **params: Any) -> Answer:
        started = time.perf_counter()
        state = self._state(messages=self._messages(question, system) if style == "chat" else None, prompt=question,
                            namespace=namespace, style=style, params=params)
        return self._answer(await self.workflow.arun(state, self._context()), started)

    def prepare(self, question: str, *, namespace: str | None = None, style: Style = "chat",
                system: str | None = None) -> dict[str, Any]:
        """A dry run: retrieve, scope and compose for one question, never calling the model (no decomposition).

        Returns the state: ``request`` (messages, or the prompt text for ``style="text"``), ``applied``
        (records), ``decisions``, ``mode`` and ``timings``. Used for teacher-forced scoring."""
        state = self._state(messages=self._messages(question, system) if style == "chat" else None, prompt=question,
                            namespace=namespace, style=style, params={})
        p = self.workflow.prepare(state, self._context(with_backend=False, multihop="never"))
        return {"namespace": p.namespace, "query": p.query, "request": p.request, "applied": p.applied,
                "in_weights": p.in_weights, "decisions": p.decisions, "mode": p.mode, "route": p.mode, "timings": p.timings}

    def prepare_chat(self, messages: Sequence[dict[str, Any]], *, namespace: str | None = None) -> Prepared:
        """Everything :meth:`chat` does except the final model call: the request to send (with the in-scope edits
        applied), or the answer itself when a multi-hop question was decomposed. The HTTP proxy and the LangGraph
        node send ``request`` to the model themselves, so they can stream it and pass the client's tools along."""
        state = self._state(messages=messages, prompt=None, namespace=namespace, style="chat", params={})
        return self.workflow.prepare(state, self._context())

    async def aprepare_chat(self, messages: Sequence[dict[str, Any]], *, namespace: str | None = None) -> Prepared:
        state = self._state(messages=messages, prompt=None, namespace=namespace, style="chat", params={})
        return await self.workflow.aprepare(state, self._context())

    def chat_answer(self, messages: Sequence[dict[str, Any]], *, namespace: str | None = None, **params: Any) -> Answer:
        started = time.perf_counter()
        state = self._state(messages=messages, prompt=None, namespace=namespace, style="chat", params=params)
        return self._answer(self.workflow.run(state, self._context()), started)

    async def achat_answer(self, messages: Sequence[dict[str, Any]], *, namespace: str | None = None, **params: Any) -> Answer:
        started = time.perf_counter()
        state = self._state(messages=messages, prompt=None, namespace=namespace, style="chat", params=params)
        return self._answer(await self.workflow.arun(state, self._context()), started)

    def chat(self, messages: Sequence[dict[str, Any]], *, namespace: str | None = None, **params: Any) -> dict[str, Any]:
        """OpenAI-shaped in, OpenAI-shaped out (``chat.completion``), plus an ``agentedit`` field."""
        return openai_response(self.chat_answer(messages, namespace=namespace, **params))

    async def achat(self, messages: Sequence[dict[str, Any]], *, namespace: str | None = None, **params: Any) -> dict[str, Any]:
        return openai_response(await self.achat_answer(messages, namespace=namespace, **params))

