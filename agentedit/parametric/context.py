""":class:`EditContext`: one model's layout, delta stack and statistics, shared by every editor on it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .arch import Layout, discover, module
from .corpus import Corpus, SampledCorpus
from .deltas import DeltaStack
from .hooks import EditFn, Seen, trace

logger = logging.getLogger(__name__)

# Sentence-level prefixes the key and target are averaged over, so an edit holds in other contexts too.
CONTEXT_PREFIXES = ("", "Here is a fact. ", "This is well known. ", "Read the following. ", "It is true. ",
                    "I read this yesterday. ")


@dataclass
class EditContext:
    """Everything an editor needs about one loaded model. Create it before any edit is applied."""

    backend: Any  # agentedit.backends.local.LocalBackend
    layout: Layout
    stack: DeltaStack
    fingerprint: str
    cache_dir: Path | None = None
    moments: Any = None  # SecondMoments, set in create()
    extra: dict[Any, Any] = field(default_factory=dict)  # per-method state that outlives one call (e.g. projections)
    store_dir: Path | None = None  # the edit store's folder (RECIPE reads its trained encoder from <store>/recipe)
    embedder: Any = None  # the store's sentence embedder (RECIPE's retrieval keys)

    @classmethod
    def create(cls, backend: Any, *, corpus: Corpus | None = None, cache_dir: str | Path | None = None,
               store_dir: str | Path | None = None, embedder: Any = None) -> "EditContext":
        from .stats import SecondMoments

        model = backend.model
        ctx = cls(backend=backend, layout=discover(model), stack=DeltaStack(model), fingerprint=backend.fingerprint,
                  cache_dir=Path(cache_dir) if cache_dir else None, store_dir=Path(store_dir) if store_dir else None,
                  embedder=embedder)
        ctx.moments = SecondMoments(ctx, corpus or SampledCorpus(), ctx.cache_dir)
        return ctx

    # -- forward helpers ---------------------------------------------------------------------------
    def pad(self, rows: Sequence[Sequence[int]]) -> tuple[Any, Any]:
        """Right-padded ids and attention mask."""
        import torch

        width = max(map(len, rows))
        pad = self.backend.tokenizer.pad_token_id
        ids = torch.tensor([list(r) + [pad] * (width - len(r)) for r in rows], device=self.backend.device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=self.backend.device)
        return ids, mask

    def body(self, ids: Any, mask: Any) -> Any:
        """Final hidden states (after the last norm), without the LM head."""
        out = module(self.backend.model, self.layout.body_path)(input_ids=ids, attention_mask=mask, use_cache=False)
        return out.last_hidden_state

    def logits(self, hidden: Any) -> Any:
        head = module(self.backend.model, self.layout.lm_head_path)
        logits = head(hidden).float()
        cap = getattr(self.layout_config, "final_logit_softcapping", None)
        if cap:
            logits = (logits / cap).tanh() * cap
        return logits

    @property
    def layout_config(self) -> Any:
        from .arch import text_config

        return text_config(self.backend.model.config)

    def run(self, rows: Sequence[Sequence[int]], *, keep_input: Mapping[str, str] | None = None,
            keep_output: Mapping[str, str] | None = None, edit: Mapping[str, tuple[str, EditFn]] | None = None,
            grad: bool = False) -> tuple[Any, dict[str, Seen]]:
        """One body pass over ``rows`` with modules read (label -> path) or changed (label -> (path, fn))."""
        import torch

        ids, mask = self.pad(rows)
        paths = {**(keep_input or {}), **(keep_output or {}), **{k: p for k, (p, _) in (edit or {}).items()}}
        fns = {k: fn for k, (_, fn) in (edit or {}).items()}
        with trace(self.backend.model, paths, keep_input=bool(keep_input), keep_output=bool(keep_output),
                   edit=fns, detach=not grad) as seen, torch.set_grad_enabled(grad):
            hidden = self.body(ids, mask)
        return hidden, seen


def low_rank_edit(left: Any, right: Any) -> EditFn:
    """A module-output change ``out + x @ (left @ right)ᵀ`` (a pending delta applied without touching weights)."""

    def fn(x: Any, out: Any) -> Any:
        return out + ((x.to(right.dtype) @ right.T) @ left.T).to(out.dtype)

    return fn
