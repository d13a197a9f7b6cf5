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
            c = self.ctx.moments.get(layer).double()
            vals, vecs = torch.linalg.eigh(c)
            keep = vecs[:, vals < self.config.null_threshold * vals.clamp_min(0).mean()]
            self.ctx.extra[key] = (keep @ keep.T).float()
        return self.ctx.extra[key]

    def earlier_keys(self, layer: int) -> Any:
        """``Σ K_pᵀ K_p`` over the AlphaEdit deltas applied to this model."""
        import torch

        d = self.ctx.layout.inner_size
        acc = torch.zeros(d, d, dtype=torch.float64, device=self.ctx.backend.device)
        for delta in self.ctx.stack.deltas:
            k = delta.extras.get(f"keys.{layer}") if delta.method == self.name else None
            if k is not None:
                k = k.to(acc.device, torch.float64)
                acc += k.T @ k
        return acc

    def solve(self, layer: int, keys: Any, resid: Any) -> tuple[Any, Any]:
        import torch

        p = self.projection(layer).double()
        k = keys.double()
        m = p @ (k.T @ k + self.earlier_keys(layer)) + self.config.l2 * torch.eye(p.shape[0], dtype=p.dtype, device=p.device)
        right = torch.linalg.solve(m, p @ k.T).T
        return resid.T.float().contiguous(), right.float().contiguous()

    def extras(self, keys: dict[str, Any]) -> dict[str, Any]:
        return keys
