"""The Editor's scope-tuning verbs: calibrate the thresholds, train the ``trained`` checker; both are saved
with the store and take effect on the next question."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .errors import ConfigError
from .memory import shared
from .scope import Calibration, calibrate_similarity
from .settings import SCOPE_MODEL_DIRNAME

if TYPE_CHECKING:
    from .memory import EditMemory
    from .settings import Settings
    from .scope import ScopeChecker
    from .scope.conflict import ConflictMatcher


class ScopeTuning:
    """Mixed into :class:`~agentedit.Editor`."""

    memory: "EditMemory"
    settings: "Settings"
    scope_model_dir: Path
    matcher: "ConflictMatcher"
    _progress: Callable[[str], None] | None
    _checker: "ScopeChecker | None"
    _matcher: "ConflictMatcher | None"
    _local_weights: bool
    weights: Any

    def calibrate(self, data: str | os.PathLike[str], *, objective: str = "recall@specificity", target_specificity: float = 0.98,
                  n_cases: int = 2000, seed: int = 0) -> Calibration:
        """Calibrate the scope thresholds on a training file and save them with the store."""
        cal = calibrate_similarity(Path(data), self.memory.embedder, n_cases=n_cases, objective=objective,  # type: ignore[arg-type]
                                   target_specificity=target_specificity, seed=seed, progress=self._progress)
        self.memory.config.setdefault("scope", {})["calibration"] = cal.to_dict()
        self.memory.save_config()
        self._checker = self._matcher = None
        self.memory.matcher = self.matcher
        return cal

    def train_scope(self, data: str | os.PathLike[str], *, minutes: float = 15.0, seed: int = 0,
                    target_specificity: float = 0.98, threads: int | None = None, kind: str = "encoder",
                    steps: int = 400) -> Any:
        """Train the ``trained`` scope checker on a CounterFact-shaped file; its model is saved with the store.

        ``kind`` is ``encoder`` (a tuned copy of the memory's sentence encoder scores relations, at most ``steps``
        batches) or ``cross-encoder`` (a MiniLM pair classifier, up to ``minutes``)."""
        if kind == "encoder":
            from .scope.encoder_training import train_relation_encoder

            report = train_relation_encoder(Path(data), self.scope_model_dir, self.memory.embedder, steps=steps,
                                            minutes=minutes, seed=seed, target_specificity=target_specificity,
                                            threads=threads, progress=self._progress)
        elif kind == "cross-encoder":
            from .scope.training import train_scope_model

            report = train_scope_model(Path(data), self.scope_model_dir, self.memory.embedder, minutes=minutes, seed=seed,
                                       target_specificity=target_specificity, threads=threads, progress=self._progress)
        else:
            raise ConfigError(f"unknown scope model kind {kind!r}; use 'encoder' or 'cross-encoder'")
        if self.settings.scope.model_dir is None:  # the store's own model: every replica of a shared store gets it
            shared.publish(self.memory.ledger, self.scope_model_dir, SCOPE_MODEL_DIRNAME)
        self._checker = None
        return report

    def train_recipe(self, data: str | os.PathLike[str], *, n_cases: int = 2000, epochs: int = 20, seed: int = 0,
                     progress: Callable[[int, int], None] | None = None, encoder: bool | None = None,
                     encoder_cases: int = 200, encoder_epochs: int = 3, prompt_tokens: int = 8,
                     minutes: float | None = None) -> dict[str, Any]:
        """Train RECIPE's knowledge sentinel (the ``sentinel`` scope checker) on a training file and, for a model
        with editable weights (``encoder`` None: when there is one), the prompt encoder of the ``recipe`` method;
        both are saved with the store (``<store>/recipe``). Returns the sentinel's figures, ``folder`` and, when one
        was trained, ``encoder`` (its figures and ``file``)."""
        from .scope.sentinel import recipe_dir
        from .scope.sentinel_training import train_sentinel

        model = train_sentinel(data, self.memory.embedder, n_cases=n_cases, epochs=epochs, seed=seed, progress=progress)
        where = recipe_dir(self.scope_model_dir)
        model.save(where)
        self._checker = None
        out: dict[str, Any] = {**model.meta, "folder": str(where)}
        if encoder is None:
            encoder = self._local_weights
        if encoder:
            out["encoder"] = self._train_encoder(data, where, n_cases=encoder_cases, epochs=encoder_epochs, seed=seed,
                                                 k=prompt_tokens, minutes=minutes, progress=progress)
        return out

    def _train_encoder(self, data: str | os.PathLike[str], where: Path, *, n_cases: int, epochs: int, seed: int, k: int,
                       minutes: float | None, progress: Callable[[int, int], None] | None) -> dict[str, Any]:
        from .parametric.recipe_encoder import save_encoder
        from .parametric.recipe_training import file_cases, train_encoder

        ctx = self.weights.ctx
        cases, digest = file_cases(data, n_cases)
        enc, meta = train_encoder(ctx, cases, self.memory.embedder, k=k, epochs=epochs, seed=seed, minutes=minutes,
                                  progress=progress)
        meta.update(data=str(data), data_sha256=digest)
        path = save_encoder(enc, where, ctx.backend, meta)
        for key in [key for key in ctx.extra if isinstance(key, tuple) and str(key[0]).startswith("recipe-")]:
            del ctx.extra[key]  # the next recipe edit loads the new encoder and sentinel
        return {**meta, "file": str(path)}
