"""ROME (Meng et al., 2022): a rank-one update of one MLP output projection per fact.

``ΔW = r uᵀ`` with ``u = C⁻¹ k*`` (``C = E[k kᵀ]`` over the corpus, ``k*`` the subject's key)
and ``r = (v* − W k) / (uᵀ k)``, so the projection maps the subject's key to the optimised
value ``v*`` and changes other keys as little as the statistics allow. Several requests are
edited one after another, each seeing the ones before it (as pending deltas).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .base import ParametricMethod
from .context import low_rank_edit
from .deltas import Delta, Factor
from .keys import subject_keys, values_at
from .requests import EditRequest
from .targets import TargetConfig, optimise_targets


@dataclass
class ROMEConfig:
    layer: int | None = None  # default: the layout's early-middle layer
    target: TargetConfig = field(default_factory=TargetConfig)
    ridge: float = 1e-4  # added to C's diagonal, times its mean, before solving


def inverse_moment_solver(ctx: Any, layer: int, ridge: float) -> Any:
    """``x ↦ (C + ridge·mean(diag C)·I)⁻¹ x`` (float64) with a Cholesky factor cached for the context's lifetime."""
    import torch

    key = ("chol", layer, ridge)
    if key not in ctx.extra:
        c = ctx.moments.get(layer).double()
        c = c + ridge * c.diagonal().mean() * torch.eye(c.shape[0], dtype=c.dtype, device=c.device)
        ctx.extra[key] = torch.linalg.cholesky(c)
    chol = ctx.extra[key]
    return lambda x: torch.cholesky_solve(x.double().to(chol.device), chol)  # float64


class ROME(ParametricMethod):
    name = "rome"
    config_type = ROMEConfig

    def compute(self, requests: Sequence[EditRequest]) -> Delta:
        import torch

        layout = self.ctx.layout
        layer = self.config.layer if self.config.layer is not None else layout.default_layers(1)[0]
        path = layout.mlp_out_path(layer)
        solve = inverse_moment_solver(self.ctx, layer, self.config.ridge)
        lefts: list[Any] = []
        rights: list[Any] = []
        pending: dict[str, tuple[str, Any]] = {}
        for req in requests:
            k = subject_keys(self.ctx, [req], layer, self.prefixes, pending)[0]
            u = solve(k[:, None])[:, 0].float()
            target, value = optimise_targets(self.ctx, [req], path, self.config.target, self.prefixes, pending)
            _, k_now = values_at(self.ctx, [req], path, pending, with_inputs=True)
            r = (target[0] - value[0]) / torch.dot(u, k_now[0])
            lefts.append(r[:, None])
            rights.append(u[None, :])
            pending = {"rome": (path, low_rank_edit(torch.cat(lefts, 1), torch.cat(rights, 0)))}
        return self._delta({layout.weight_name(layer): Factor(torch.cat(lefts, 1), torch.cat(rights, 0))})
