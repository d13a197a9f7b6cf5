"""Second-moment statistics ``C = E[k kᵀ]`` of the keys (inputs of the MLP output projection).

Computed once per (model, layer, corpus) on the unedited weights and cached on disk as
safetensors under ``<cache>/stats/<model fingerprint>/<corpus id>/layer<L>.safetensors``.
ROME, MEMIT and AlphaEdit all read them from here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

from .corpus import Corpus, batches
from .hooks import trace

logger = logging.getLogger(__name__)


class SecondMoments:
    """Lazily computed, disk-cached ``E[k kᵀ]`` per layer for one model and corpus."""

    def __init__(self, ctx: Any, corpus: Corpus, cache_dir: Path | None, *, batch_size: int = 8) -> None:
        self.ctx = ctx
        self.corpus = corpus
        self.dir = cache_dir / "stats" / ctx.fingerprint / corpus.id if cache_dir else None
        self.batch_size = batch_size
        self._mem: dict[int, tuple[Any, int]] = {}

    def _file(self, layer: int) -> Path | None:
        return self.dir / f"layer{layer}.safetensors" if self.dir else None

    def get(self, layer: int) -> Any:
        """``E[k kᵀ]`` at ``layer`` (fp32, on the model's device)."""
        self.prefetch([layer])
        return self._mem[layer][0]

    def count(self, layer: int) -> int:
        self.prefetch([layer])
        return self._mem[layer][1]

    def prefetch(self, layers: Iterable[int]) -> None:
        """Load or compute the statistics of several layers (one pass over the corpus for all that are missing)."""
        from safetensors.torch import load_file

        todo = []
        for layer in sorted(set(layers)):
            if layer in self._mem:
                continue
            f = self._file(layer)
            if f is not None and f.exists():
                t = load_file(str(f), device=str(self.ctx.backend.device))
                self._mem[layer] = (t["mom2"], int(t["count"].item()))
            else:
                todo.append(layer)
        if todo:
            self._compute(todo)

    def _compute(self, layers: list[int]) -> None:
        import torch
        from safetensors.torch import save_file

        ctx = self.ctx
        with ctx.stack.pristine():
            rows = self.corpus.rows(ctx.backend, self.dir.parent / "corpora" if self.dir else None)  # per model
            logger.info("second moments of layers %s over %d rows of %s", layers, len(rows), self.corpus.id)
            size = ctx.layout.inner_size
            acc = {L: torch.zeros(size, size, dtype=torch.float32, device=ctx.backend.device) for L in layers}
            n = 0
            paths = {str(L): ctx.layout.mlp_out_path(L) for L in layers}
            for ids, mask in batches(rows, ctx.backend.tokenizer.pad_token_id, self.batch_size, ctx.backend.device):
                with trace(ctx.backend.model, paths, keep_input=True) as seen, torch.no_grad():
                    ctx.body(ids, mask)
                keep = mask.bool()
                n += int(keep.sum())
                for L in layers:
                    k = seen[str(L)].input[keep].float()
                    acc[L].addmm_(k.T, k)
        for L in layers:
            mom2 = acc[L] / max(n, 1)
            self._mem[L] = (mom2, n)
            f = self._file(L)
            if f is not None:
                f.parent.mkdir(parents=True, exist_ok=True)
                tmp = f.with_suffix(".tmp")
                save_file({"mom2": mom2.cpu().contiguous(), "count": torch.tensor([n])}, str(tmp))
                tmp.replace(f)
