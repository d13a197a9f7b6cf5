"""AlphaEdit (Fang et al., 2025): MEMIT projected onto the null space of preserved knowledge.

For long sequences of edits. Each layer's update is restricted to directions where the
corpus keys have (almost) no energy (``P``: eigenvectors of ``C`` whose eigenvalue is below
``null_threshold`` times the mean eigenvalue), so it leaves what the corpus exercises alone;
keys of earlier edits enter the solve so a new edit does not undo them:
``ΔW = Rᵀ K P (P (KᵀK + K_pᵀK_p) + α I)⁻ᵀ``. The earlier keys are stored with each delta, so a
revert or a restart rebuilds them from the deltas that are still applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .memit import MEMIT, MEMITConfig


@dataclass
class AlphaEditConfig(MEMITConfig):
    null_threshold: float = 1e-2
    l2: float = 10.0  # α


class AlphaEdit(MEMIT):
    name = "alphaedit"
    config_type = AlphaEditConfig

    def projection(self, layer: int) -> Any:
        import torch

        key = ("null-space", layer, self.config.null_threshold)
        if key not in self.ctx.extra:
            c = self.ctx.moments.get(layer).float()  # float32 is enough to split the spectrum, and much faster
            vals, vecs = torch.linalg.eigh(c)
            keep = vecs[:, vals < self.config.null_threshold * vals.clamp_min(0).mean()]
            self.ctx.extra[key] = (keep @ keep.T).float()
        return self.ctx.extra[key]

    def earlier_keys(self, layer: int) -> list[Any]:
        """The keys ``K_p`` stored with the AlphaEdit deltas applied to this model."""
        return [d.extras[f"keys.{layer}"] for d in self.ctx.stack.deltas
                if d.method == self.name and f"keys.{layer}" in d.extras]

    def solve(self, layer: int, keys: Any, resid: Any) -> tuple[Any, Any]:
        """``M⁻¹ P Kᵀ`` with ``M = α I + (P K_allᵀ) K_all`` by Woodbury: ``O(d² m)`` for ``m`` keys, never ``O(d³)``."""
        import torch

        p = self.projection(layer).double()
        k = keys.double()
        every = torch.cat([k, *[e.to(k.device, k.dtype) for e in self.earlier_keys(layer)]])  # K_all, [m, in]
        u = p @ every.T  # [in, m]
        b = p @ k.T  # [in, n]
        alpha = self.config.l2
        small = alpha * torch.eye(every.shape[0], dtype=k.dtype, device=k.device) + every @ u
        x = (b - u @ torch.linalg.solve(small, every @ b)) / alpha
        return resid.T.float().contiguous(), x.T.float().contiguous()

    def extras(self, keys: dict[str, Any]) -> dict[str, Any]:
        return keys
