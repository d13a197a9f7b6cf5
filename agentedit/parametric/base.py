"""What every parametric editor shares: ``apply(requests) -> Delta`` and ``revert(delta)``."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, is_dataclass
from typing import Any, ClassVar, Sequence

from .context import CONTEXT_PREFIXES, EditContext
from .deltas import Delta
from .requests import EditRequest, as_requests

logger = logging.getLogger(__name__)


class ParametricMethod:
    """Subclasses implement :meth:`compute`, which reads the model and never writes it."""

    name: ClassVar[str] = ""
    config_type: ClassVar[type] = object

    def __init__(self, ctx: EditContext, config: Any = None) -> None:
        self.ctx = ctx
        self.config = config if config is not None else self.config_type()
        if not isinstance(self.config, self.config_type):
            raise TypeError(f"{self.name} takes a {self.config_type.__name__}, got {type(self.config).__name__}")

    @property
    def prefixes(self) -> tuple[str, ...]:
        return CONTEXT_PREFIXES

    def compute(self, requests: Sequence[EditRequest]) -> Delta:
        raise NotImplementedError

    def apply(self, requests: Sequence[EditRequest | Any]) -> Delta:
        """Validate, compute the delta, then write it to the weights in one step. On error nothing is written."""
        reqs = as_requests(list(requests))
        started = time.perf_counter()
        with self.ctx.backend.lock:
            delta = self.compute(reqs)
            delta.meta.update(method=self.name, requests=[{"id": r.id, "prompt": r.prompt, "subject": r.subject,
                                                           "target": r.target} for r in reqs],
                              config=asdict(self.config) if is_dataclass(self.config) and not isinstance(self.config, type) else {},
                              model=self.ctx.fingerprint, seconds=round(time.perf_counter() - started, 3))
            self.ctx.stack.push(delta)
        logger.info("%s: %d edit(s) applied in %.1fs (delta %s)", self.name, len(reqs), delta.meta["seconds"], delta.id)
        return delta

    def revert(self, delta: Delta | str) -> Delta:
        """Remove a delta; the weights are bit-for-bit what they would be without it."""
        with self.ctx.backend.lock:
            return self.ctx.stack.remove(delta if isinstance(delta, str) else delta.id)

    def _delta(self, parts: dict[str, Any], **extras: Any) -> Delta:
        return Delta(method=self.name, parts=parts, transposed=self.ctx.layout.transposed, extras=extras)
