"""MEMIT (Meng et al., 2023): many facts at once, spread over several consecutive layers.

One target ``z`` per request is optimised at the output of the last edited block; then, layer
by layer, the remaining gap ``z − h`` is divided among the layers left and each layer solves
``ΔW = R Kᵀ (λ C + K Kᵀ)⁻¹`` (rows: ``R [n, out]``, ``K [n, in]``), with the updates of the
layers already done in place (as pending deltas). The statistics ``C`` are ROME's
(:mod:`agentedit.parametric.stats`); :class:`~agentedit.parametric.alphaedit.AlphaEdit` reuses
everything here and changes only :meth:`MEMIT.solve`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .base import ParametricMethod
from .context import low_rank_edit
from .deltas import Delta, Factor
from .keys import subject_keys, values_at
from .requests import EditRequest
from .rome import inverse_moment_solver
from .targets import TargetConfig, optimise_targets


@dataclass
class MEMITConfig:
    layers: tuple[int, ...] | None = None  # default: 5 consecutive early-middle layers
    n_layers: int = 5
    mom2_weight: float = 15000.0  # λ
    ridge: float = 1e-4  # added to C's diagonal (times its mean) so a statistics matrix from little text is invertible
    target: TargetConfig = field(default_factory=TargetConfig)


class MEMIT(ParametricMethod):
    name = "memit"
    config_type = MEMITConfig

    def layers(self) -> tuple[int, ...]:
        if self.config.layers:
            for L in self.config.layers:
                self.ctx.layout.mlp_out_path(L)  # raises for a layer that does not exist
            return tuple(self.config.layers)
        return self.ctx.layout.default_layers(self.config.n_layers)

    def compute(self, requests: Sequence[EditRequest]) -> Delta:
        layout, layers = self.ctx.layout, self.layers()
        self.ctx.moments.prefetch(layers)
        z_path = layout.block_path(layers[-1])
        z, _ = optimise_targets(self.ctx, requests, z_path, self.config.target, self.prefixes)
        parts: dict[str, Factor] = {}
        pending: dict[str, tuple[str, Any]] = {}
        keys: dict[str, Any] = {}
        for i, layer in enumerate(layers):
            k = subject_keys(self.ctx, requests, layer, self.prefixes, pending)
            now = values_at(self.ctx, requests, z_path, pending)
            resid = (z - now) / (len(layers) - i)
            left, right = self.solve(layer, k, resid)
            parts[layout.weight_name(layer)] = Factor(left, right)
            pending[f"layer{layer}"] = (layout.mlp_out_path(layer), low_rank_edit(left, right))
            keys[f"keys.{layer}"] = k
        return self._delta(parts, **self.extras(keys))

    def solve(self, layer: int, keys: Any, resid: Any) -> tuple[Any, Any]:
        """``(left, right)`` with ``left @ right = Rᵀ K (λC + KᵀK)⁻¹`` (as ``[out, n] @ [n, in]``).

        Through ``(λC + KᵀK)⁻¹Kᵀ = (λC)⁻¹Kᵀ (I + K(λC)⁻¹Kᵀ)⁻¹`` with ROME's cached factor of ``C``:
        ``O(d²n)`` per call instead of a fresh ``O(d³)`` solve.
        """
        import torch

        inv = inverse_moment_solver(self.ctx, layer, self.config.ridge)
        k = keys.double()
        ck = inv(k.T) / self.config.mom2_weight  # (λC)⁻¹Kᵀ, [in, n]
        small = torch.eye(k.shape[0], dtype=k.dtype, device=k.device) + k @ ck
        right = torch.linalg.solve(small, ck.T)
        return resid.T.float().contiguous(), right.float().contiguous()

    def extras(self, keys: dict[str, Any]) -> dict[str, Any]:
        """Tensors kept with the delta (none for MEMIT)."""
        return {}
