"""What one evaluation run is: :class:`RunConfig`, the typed :class:`~agentedit.settings.Settings` it holds, and the
fingerprint a run folder is resumed by."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError
from ..settings import ModelSpec, Settings
from .protocols import get_protocol

Protocol = str  # a name in protocols.PROTOCOLS: lifelong, single, easyedit-knowedit, rome-counterfact, ...
Scoring = Literal["generation-match", "teacher-forced"]
DEFAULT_EVAL_MODEL = "llamacpp:qwen2.5-coder-0.5b-instruct"
DEFAULT_EVAL_MAX_TOKENS = 24

# The run's options by their flat names, in the order run.json's "config" has always listed them; suite files use
# the same names. model, api_base, max_tokens, demo_pool and scope_model live in RunConfig.settings.
OPTIONS: tuple[str, ...] = ("datasets", "methods", "model", "api_base", "limit", "seed", "protocol", "scoring",
                            "memory_sizes", "size_probe_cases", "max_tokens", "concurrency", "suite", "data_dir",
                            "demo_pool", "scope_model", "probe_limit", "probe_kinds")
SETTINGS_OPTIONS: tuple[str, ...] = ("model", "api_base", "max_tokens", "demo_pool", "scope_model")


@dataclass(init=False)
class RunConfig:
    """One run's options. The model and what the Editors are built with are a :class:`Settings` (``settings``);
    their flat names (``model``, ``api_base``, ``max_tokens``, ``demo_pool``, ``scope_model``) are accepted by the
    constructor and read and set as attributes, as before."""

    datasets: list[str]
    methods: list[str]
    settings: Settings
    limit: int | None
    seed: int | None
    protocol: Protocol
    scoring: Scoring
    memory_sizes: list[int]
    size_probe_cases: int
    concurrency: int
    suite: str
    data_dir: str | None
    probe_limit: int | None  # probe only the first N cases, with every loaded case's edits in memory
    probe_kinds: list[str] | None  # run only probes of these kinds (e.g. portability); None: all

    def __init__(self, datasets: list[str], methods: list[str], model: str | ModelSpec | None = None,
                 api_base: str | None = None, limit: int | None = None, seed: int | None = None,
                 protocol: Protocol = "lifelong", scoring: Scoring | None = None,
                 memory_sizes: list[int] | None = None, size_probe_cases: int = 20, max_tokens: int | None = None,
                 concurrency: int = 1, suite: str = "custom", data_dir: str | None = None,
                 demo_pool: str | os.PathLike[str] | None = None, scope_model: str | os.PathLike[str] | None = None,
                 probe_limit: int | None = None, probe_kinds: list[str] | None = None, *,
                 settings: Settings | None = None) -> None:
        self.datasets, self.methods = datasets, methods
        # a named protocol fixes the scoring (a different one is refused); lifelong and single take either
        self.limit, self.seed, self.protocol = limit, seed, protocol
        self.scoring = get_protocol(protocol).resolve_scoring(scoring)  # type: ignore[assignment]
        self.memory_sizes = list(memory_sizes) if memory_sizes is not None else []
        self.size_probe_cases, self.concurrency, self.suite, self.data_dir = size_probe_cases, concurrency, suite, data_dir
        self.probe_limit, self.probe_kinds = probe_limit, probe_kinds
        if settings is None:  # the run's own defaults, not $AGENTEDIT_MODEL: a run folder's identity must not drift
            settings = Settings.from_env(model or DEFAULT_EVAL_MODEL, api_base=api_base,
                                         max_tokens=DEFAULT_EVAL_MAX_TOKENS if max_tokens is None else max_tokens,
                                         demo_pool=demo_pool, scope_model=scope_model)
        else:
            settings = settings.replace(model=model, api_base=api_base, max_tokens=max_tokens, demo_pool=demo_pool,
                                        scope_model=scope_model)
        self.settings = settings
        self._check()

    def _check(self) -> None:
        if self.probe_limit is not None and self.probe_limit < 1:
            raise ConfigError(f"probe_limit must be at least 1 (or left out to probe every case), got {self.probe_limit}")
        if self.probe_kinds is not None:
            from .cases import PROBE_KINDS

            unknown = sorted(set(self.probe_kinds) - set(PROBE_KINDS))
            if unknown or not self.probe_kinds:
                raise ConfigError(f"unknown probe kind(s) {', '.join(unknown) or '(none given)'}; "
                                  f"choose from {', '.join(PROBE_KINDS)}")

    # -- the settings by their flat names ---------------------------------------------------------------
    @property
    def spec(self) -> ModelSpec:
        return self.settings.model.spec

    @property
    def model(self) -> str:
        return str(self.settings.model.spec)

    @model.setter
    def model(self, value: str | ModelSpec) -> None:
        self.settings = self.settings.replace(model=value, api_base=self.api_base)

    @property
    def api_base(self) -> str | None:
        return self.settings.model.spec.api_base

    @api_base.setter
    def api_base(self, value: str | None) -> None:
        spec = dataclasses.replace(self.settings.model.spec, api_base=value).checked()
        self.settings = dataclasses.replace(self.settings, model=dataclasses.replace(self.settings.model, spec=spec))

    @property
    def max_tokens(self) -> int:
        return self.settings.model.max_tokens or DEFAULT_EVAL_MAX_TOKENS

    @max_tokens.setter
    def max_tokens(self, value: int) -> None:
        self.settings = self.settings.replace(max_tokens=value)

    @property
    def demo_pool(self) -> str | None:
        return self.settings.injection.demo_pool

    @demo_pool.setter
    def demo_pool(self, value: str | os.PathLike[str] | None) -> None:
        injection = dataclasses.replace(self.settings.injection, demo_pool=None if value is None else str(value))
        self.settings = dataclasses.replace(self.settings, injection=injection)

    @property
    def scope_model(self) -> str | None:
        return self.settings.scope.model_dir

    @scope_model.setter
    def scope_model(self, value: str | os.PathLike[str] | None) -> None:
        scope = dataclasses.replace(self.settings.scope, model_dir=None if value is None else str(value))
        self.settings = dataclasses.replace(self.settings, scope=scope)

    # -- identity ---------------------------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        """The run's options by their flat names (run.json's ``config``, a suite file's settings)."""
        return {name: _plain(getattr(self, name)) for name in OPTIONS}

    def fingerprint(self, *, legacy: bool = False) -> str:
        """What a run folder's results depend on. Which probes are asked (``probe_limit``, ``probe_kinds``) is left
        out: results are kept per probe, so a run can be widened later (``legacy``: the fingerprint of runs made
        before that, which counted them)."""
        keep = {k: v for k, v in self.options().items() if k not in ("concurrency", "data_dir")}
        for optional in ("scope_model", "probe_limit", "probe_kinds"):
            if keep.get(optional) is None or (not legacy and optional != "scope_model"):
                keep.pop(optional, None)  # runs from before the option keep their fingerprint
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """A copy as :func:`dataclasses.asdict` made it (lists copied), so options() matches what run.json always held."""
    return list(value) if isinstance(value, (list, tuple)) else value
