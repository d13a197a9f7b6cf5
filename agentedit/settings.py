"""The composition root's settings: a model spec parsed once, settings grouped by concern, the
environment read in one place.

>>> s = Settings.from_env(model="openai/gpt-4o-mini", k=8, scope="trained")
>>> s.model.spec.kind, s.retrieval.k, s.scope.checker
('api', 8, 'trained')

``Editor``, ``agentedit serve`` (:class:`~agentedit.server.config.ServerConfig`), the CLI and the
evaluation runner (:class:`~agentedit.evaluation.runner.RunConfig`) all hold one :class:`Settings`
instead of repeating its fields. Flat names (``k=``, ``scope=``, ``method=``...) are accepted by
:meth:`Settings.replace` for convenience; :data:`FLAT` lists them and where each one lands.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from .errors import ConfigError

ModelKind = Literal["api", "llamacpp", "hf"]
DEFAULT_LOCAL_MODEL = "qwen2.5-coder-0.5b-instruct"
# Chosen by measurement (evals/results/scope-checkers*, blackbox-counterfact-*): at the calibrated thresholds the
# relation-aware checker keeps 0.75 of CounterFact's in-scope queries against 0.49 for similarity alone, at
# specificity 0.995 vs 1.0, and it is the only one of the two that accepts paraphrased questions.
DEFAULT_CHECKER = "relation-clauses"
DEFAULT_NAMESPACE = "default"
SCOPE_MODEL_DIRNAME = "scope-model"  # the trained scope checker's folder inside a store
# The runtime of the sentence embedder: ONNX Runtime (same weights, vectors equal to the torch path's to ~1e-6 in
# cosine, 2-3x faster per query: evals/results/proxy-bench-session4) or sentence-transformers on torch.
# onnx-int8 (opt-in): a quantised copy, ~2x faster to embed, other vectors (a store keeps to one); at the float
# calibration it keeps recall but loses specificity on wiki_counterfact (0.995 -> 0.765; scope-checkers-session4-*).
EMBEDDER_BACKENDS = ("onnx", "torch", "onnx-int8")
DEFAULT_EMBEDDER_BACKEND = "onnx"

# Every environment variable agentedit reads, and what it means. Nothing else in the package reads os.environ.
ENV_VARS: dict[str, str] = {
    "AGENTEDIT_MODEL": "default model spec",
    "AGENTEDIT_API_BASE": "base URL of an OpenAI-compatible server for the model",
    "AGENTEDIT_UPSTREAM_KEY": "API key `agentedit serve` sends upstream",
    "AGENTEDIT_STORE": "default store name",
    "AGENTEDIT_STORES": "folder holding named stores (default ./stores)",
    "AGENTEDIT_NAMESPACE": "default namespace",
    "AGENTEDIT_SCOPE": "default scope checker",
    "AGENTEDIT_SCOPE_MODEL": "folder of the trained scope model",
    "AGENTEDIT_METHOD": "route of new edits (in-context, rome, memit, ft, alphaedit, grace, wise, recipe)",
    "AGENTEDIT_CHROMA_URL": "a Chroma server for the vector index",
    "AGENTEDIT_DATABASE_URL": "a PostgreSQL database for the ledger, keys and settings (postgresql://...)",
    "AGENTEDIT_DATABASE_WAIT": "seconds to keep retrying an unreachable database at open ('forever'; default 30, "
                               "serve: forever)",
    "AGENTEDIT_VECTOR_INDEX": "'chroma' (default) or 'pgvector' (the index in the --database-url database)",
    "AGENTEDIT_PG_BIN": "the PostgreSQL server binaries for throwaway test servers (default /usr/lib/postgresql/*/bin)",
    "AGENTEDIT_DATABASE_MIGRATE": "'off' to refuse an outdated database schema instead of migrating it on open",
    "AGENTEDIT_DEVICE": "device of hf: models (auto, cpu, cuda...)",
    "AGENTEDIT_DTYPE": "dtype of hf: models (auto, float32, bfloat16, float16)",
    "AGENTEDIT_STATS_CORPUS": "text file for the ROME/MEMIT key statistics",
    "AGENTEDIT_CACHE": "cache folder (default ~/.cache/agentedit)",
    "AGENTEDIT_EMBEDDER_BACKEND": "runtime of the sentence embedder: onnx (default), torch, or onnx-int8",
    "AGENTEDIT_PROMPTS": "a folder of prompt templates replacing the packaged ones",
    "AGENTEDIT_MARKER_SECRET": "fixes the facts-block marker (benchmarks; leave unset in deployments)",
    "AGENTEDIT_DATA": "folder of the benchmark files",
    "AGENTEDIT_LLAMA_THREADS": "CPU threads of the embedded llama.cpp server",
    "AGENTEDIT_UPSTREAM_CLIENT": "'direct' (default: httpx straight to an OpenAI-compatible api_base) or 'litellm'",
}


def env(name: str, default: str | None = None) -> str | None:
    """The value of one of :data:`ENV_VARS` (stripped; empty counts as unset)."""
    if name not in ENV_VARS:
        raise KeyError(f"{name} is not an agentedit environment variable; add it to ENV_VARS with its meaning")
    value = os.environ.get(name, "").strip()
    return value or default


def offline_defaults() -> None:
    """No hub downloads and litellm's bundled cost map, unless the caller's environment says otherwise."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@dataclass(frozen=True)
class ModelSpec:
    """A model spec, parsed once: ``provider/model`` (litellm, ``api_base`` for OpenAI-compatible servers),
    ``llamacpp:<name|file.gguf>`` (the embedded server) or ``hf:<hub id|dir|file.gguf|name>`` (local weights)."""

    kind: ModelKind
    name: str
    api_base: str | None = None

    @classmethod
    def parse(cls, spec: "str | ModelSpec | None", *, api_base: str | None = None) -> "ModelSpec":
        if isinstance(spec, ModelSpec):
            return spec if api_base is None else dataclasses.replace(spec, api_base=api_base).checked()
        if spec is None:
            spec = env("AGENTEDIT_MODEL") or f"llamacpp:{DEFAULT_LOCAL_MODEL}"
        if not isinstance(spec, str) or not spec.strip():
            raise ConfigError("model spec is empty; use e.g. 'openai/gpt-4o-mini', 'llamacpp:qwen2.5-coder-0.5b-instruct' "
                              "or 'hf:smollm2-135m-instruct'")
        spec = spec.strip()
        for prefix in ("llamacpp", "hf"):
            if spec.startswith(prefix + ":"):
                name = spec.split(":", 1)[1].strip()
                if prefix == "llamacpp":
                    name = name or DEFAULT_LOCAL_MODEL
                elif not name:
                    raise ConfigError("hf: needs a model: a hub id from the local cache, a directory, a .gguf file or a known short name")
                return cls(prefix, name, api_base).checked()  # type: ignore[arg-type]
        return cls("api", spec, api_base).checked()

    def checked(self) -> "ModelSpec":
        if self.api_base and self.kind == "llamacpp":
            raise ConfigError("api_base cannot be combined with a llamacpp: model; the embedded server picks its own address")
        if self.api_base and self.kind == "hf":
            raise ConfigError("api_base cannot be combined with an hf: model; its weights are loaded in this process")
        return self

    @property
    def editable_weights(self) -> bool:
        return self.kind == "hf"

    @property
    def hosted(self) -> bool:
        """A provider's API model (no ``api_base``): strong enough to parse statements and judge scope."""
        return self.kind == "api" and self.api_base is None

    def __str__(self) -> str:
        return self.name if self.kind == "api" else f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class ModelSettings:
    spec: ModelSpec = field(default_factory=lambda: ModelSpec.parse(None))
    api_key: str | None = None
    timeout: float = 60.0
    max_retries: int = 2
    temperature: float | None = 0.0
    max_tokens: int | None = 256
    device: str = "auto"  # hf: models
    dtype: str = "auto"

    def params(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}


@dataclass(frozen=True)
class StoreSettings:
    name: str = "default"
    root: str | None = None
    chroma_url: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    #: a PostgreSQL URL: the ledger, keys and settings live there (replicas on several hosts); None: SQLite files
    database_url: str | None = None
    #: "chroma" (embedded, or the server at chroma_url) or "pgvector" (in the database_url database)
    vector_index: str | None = None

    def folder(self) -> Path:
        return Path(self.root or env("AGENTEDIT_STORES") or "stores").resolve() / self.name


@dataclass(frozen=True)
class RetrievalSettings:
    k: int = 4


@dataclass(frozen=True)
class ScopeSettings:
    checker: str = DEFAULT_CHECKER
    max_edits: int = 4
    model_dir: str | None = None  # the trained checker's model; default: the store's scope-model folder

    def model_folder(self, store_folder: Path) -> Path:
        """Where the trained checker's model lives: ``model_dir``, else ``scope-model`` in the store's folder."""
        return Path(self.model_dir) if self.model_dir is not None else store_folder / SCOPE_MODEL_DIRNAME


@dataclass(frozen=True)
class InjectionSettings:
    mode: Literal["facts", "ike"] = "facts"
    demo_pool: str | None = None
    n_demos: int = 6


@dataclass(frozen=True)
class MultihopSettings:
    mode: Literal["never", "always", "auto"] = "auto"
    hop_limit: int = 4
    resolve: Literal["edit", "model"] = "edit"
    follow_edits: bool = True
    hop_max_tokens: int = 64


@dataclass(frozen=True)
class AnatomySettings:
    """How a plain statement gets its subject, relation and target: ``auto`` asks a hosted API model and uses the
    parser (spaCy) and offline rules otherwise, ``model`` always asks the model, ``rules`` never does, ``off`` keeps
    statements as given. A parse less confident than ``review_below`` is marked ``needs_review``."""

    mode: Literal["auto", "model", "rules", "off"] = "auto"
    review_below: float = 0.7


@dataclass(frozen=True)
class WeightSettings:
    method: str | None = None  # None: ROME for hf: models, in-context otherwise
    configs: Mapping[str, Any] | None = None
    stats_corpus: str | None = None


# flat name -> (group, field); the group "model.spec" takes a spec string, "model.api_base" the spec's api_base
FLAT: dict[str, tuple[str, str]] = {
    "api_key": ("model", "api_key"), "timeout": ("model", "timeout"), "max_retries": ("model", "max_retries"),
    "temperature": ("model", "temperature"), "max_tokens": ("model", "max_tokens"),
    "device": ("model", "device"), "dtype": ("model", "dtype"),
    "store": ("store", "name"), "store_dir": ("store", "root"), "chroma_url": ("store", "chroma_url"),
    "namespace": ("store", "namespace"), "database_url": ("store", "database_url"),
    "vector_index": ("store", "vector_index"),
    "k": ("retrieval", "k"),
    "scope": ("scope", "checker"), "max_edits": ("scope", "max_edits"), "scope_model": ("scope", "model_dir"),
    "injection": ("injection", "mode"), "demo_pool": ("injection", "demo_pool"),
    "multihop": ("multihop", "mode"), "hop_limit": ("multihop", "hop_limit"), "resolve": ("multihop", "resolve"),
    "follow_edits": ("multihop", "follow_edits"),
    "anatomy": ("anatomy", "mode"), "decompose": ("anatomy", "mode"),  # decompose: the name before 0.2
    "review_below": ("anatomy", "review_below"),
    "method": ("weights", "method"), "editor_configs": ("weights", "configs"), "method_configs": ("weights", "configs"),
    "stats_corpus": ("weights", "stats_corpus"),
}

_PATHS = {"root", "model_dir", "demo_pool", "stats_corpus"}


@dataclass(frozen=True)
class Settings:
    """Everything an :class:`~agentedit.Editor` is configured with, grouped by concern."""

    model: ModelSettings = field(default_factory=ModelSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    scope: ScopeSettings = field(default_factory=ScopeSettings)
    injection: InjectionSettings = field(default_factory=InjectionSettings)
    multihop: MultihopSettings = field(default_factory=MultihopSettings)
    anatomy: AnatomySettings = field(default_factory=AnatomySettings)
    weights: WeightSettings = field(default_factory=WeightSettings)

    @classmethod
    def from_env(cls, model: "str | ModelSpec | None" = None, **flat: Any) -> "Settings":
        """Defaults, then the environment (:data:`ENV_VARS`), then ``model`` and the flat overrides."""
        spec = ModelSpec.parse(model, api_base=flat.pop("api_base", None) or (None if model else env("AGENTEDIT_API_BASE")))
        base = cls(model=ModelSettings(spec=spec, device=env("AGENTEDIT_DEVICE", "auto") or "auto",
                                       dtype=env("AGENTEDIT_DTYPE", "auto") or "auto"),
                   store=StoreSettings(name=env("AGENTEDIT_STORE", "default") or "default", root=env("AGENTEDIT_STORES"),
                                       chroma_url=env("AGENTEDIT_CHROMA_URL"), database_url=env("AGENTEDIT_DATABASE_URL"),
                                       vector_index=env("AGENTEDIT_VECTOR_INDEX"),
                                       namespace=env("AGENTEDIT_NAMESPACE", DEFAULT_NAMESPACE) or DEFAULT_NAMESPACE),
                   scope=ScopeSettings(checker=env("AGENTEDIT_SCOPE", DEFAULT_CHECKER) or DEFAULT_CHECKER,
                                       model_dir=env("AGENTEDIT_SCOPE_MODEL")),
                   weights=WeightSettings(method=env("AGENTEDIT_METHOD"), stats_corpus=env("AGENTEDIT_STATS_CORPUS")))
        return base.replace(**flat)

    def replace(self, **flat: Any) -> "Settings":
        """A copy with flat overrides (``k=8``, ``scope="trained"``, ``model="hf:..."``...); ``None`` keeps a value."""
        groups: dict[str, dict[str, Any]] = {}
        spec = self.model.spec
        if flat.get("model") is not None or flat.get("api_base") is not None:
            spec = ModelSpec.parse(flat.pop("model", None) or spec, api_base=flat.pop("api_base", None))
        flat.pop("model", None), flat.pop("api_base", None)
        for name, value in flat.items():
            if name not in FLAT:
                raise ConfigError(f"unknown setting {name!r}; known settings: model, api_base, {', '.join(sorted(FLAT))}")
            if value is None:
                continue
            group, attr = FLAT[name]
            groups.setdefault(group, {})[attr] = str(value) if attr in _PATHS else value
        out = dataclasses.replace(self, model=dataclasses.replace(self.model, spec=spec))
        for group, changes in groups.items():
            out = dataclasses.replace(out, **{group: dataclasses.replace(getattr(out, group), **changes)})
        return out.validate()

    def validate(self) -> "Settings":
        from .records import validate_namespace
        from .scope import CHECKERS

        if self.scope.checker not in CHECKERS:
            raise ConfigError(f"unknown scope checker {self.scope.checker!r}; choose one of {', '.join(CHECKERS)}")

        if self.retrieval.k < 1 or self.scope.max_edits < 1:
            raise ConfigError("k and max_edits must be at least 1")
        if self.injection.mode not in ("facts", "ike"):
            raise ConfigError(f"unknown injection mode {self.injection.mode!r}; choose 'facts' or 'ike'")
        if self.injection.mode == "ike" and self.injection.demo_pool is None:
            raise ConfigError("injection='ike' needs demo_pool= (a CounterFact-shaped training file such as counterfact-train.json)")
        if self.multihop.mode not in ("never", "always", "auto"):
            raise ConfigError(f"unknown multihop mode {self.multihop.mode!r}; choose 'auto', 'always' or 'never'")
        if self.multihop.resolve not in ("edit", "model"):
            raise ConfigError(f"unknown resolve mode {self.multihop.resolve!r}; choose 'edit' (an in-scope edit wins) or 'model' (MeLLo)")
        if not 1 <= self.multihop.hop_limit <= 16:
            raise ConfigError(f"hop_limit must be between 1 and 16, got {self.multihop.hop_limit}")
        if self.anatomy.mode not in ("auto", "model", "rules", "off"):
            raise ConfigError(f"unknown anatomy mode {self.anatomy.mode!r}; choose 'auto', 'model', 'rules' or 'off'")
        if not 0.0 <= self.anatomy.review_below <= 1.0:
            raise ConfigError(f"review_below must be between 0 and 1, got {self.anatomy.review_below}")
        if self.model.timeout <= 0 or self.model.max_retries < 0:
            raise ConfigError("timeout must be positive and max_retries at least 0")
        if self.weights.stats_corpus is not None and not Path(self.weights.stats_corpus).is_file():
            raise ConfigError(f"stats corpus {self.weights.stats_corpus} is not a file; give a UTF-8 text file (prose like the "
                              "model's domain) for the ROME/MEMIT statistics, or leave it out to use text sampled from the model")
        validate_namespace(self.store.namespace)
        return self

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["model"]["spec"] = str(self.model.spec)
        out["model"].pop("api_key", None)  # never written to reports or logs
        return out


class SettingsViews:
    """Read-only views of the fields callers ask for most, for objects that hold a ``settings`` attribute
    (the CLI's options, ``ServerConfig``)."""

    settings: Settings

    @property
    def model(self) -> str:
        return str(self.settings.model.spec)

    @property
    def store(self) -> str:
        return self.settings.store.name

    @property
    def store_dir(self) -> str | None:
        return self.settings.store.root

    @property
    def chroma_url(self) -> str | None:
        return self.settings.store.chroma_url

    @property
    def namespace(self) -> str:
        return self.settings.store.namespace

    @property
    def database_url(self) -> str | None:
        return self.settings.store.database_url


__all__ = ["AnatomySettings", "DEFAULT_CHECKER", "DEFAULT_LOCAL_MODEL", "DEFAULT_NAMESPACE", "ENV_VARS", "FLAT",
           "InjectionSettings", "ModelKind", "ModelSettings", "ModelSpec", "MultihopSettings", "RetrievalSettings",
           "ScopeSettings", "Settings", "SettingsViews", "StoreSettings", "WeightSettings", "env", "offline_defaults"]
