"""Constrained fine-tuning (FT-L in the ROME paper): gradient steps on the target's likelihood,
changing one MLP output projection within ``±norm_constraint`` of its loaded values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .base import ParametricMethod
from .deltas import Delta, Factor
from .keys import target_row
from .requests import EditRequest


@dataclass
class FTConfig:
    layers: tuple[int, ...] | None = None  # default: the layout's early-middle layer
    steps: int = 25
    lr: float = 5e-4
    norm_constraint: float = 5e-4  # L∞ bound on each weight's change
    stop_loss: float = 1e-2


class FineTune(ParametricMethod):
    name = "ft"
    config_type = FTConfig

    def compute(self, requests: Sequence[EditRequest]) -> Delta:
        import torch
        import torch.nn.functional as F

        layout, cfg, ctx = self.ctx.layout, self.config, self.ctx
        layers = cfg.layers or layout.default_layers(1)
        device = ctx.backend.device
        dense = {L: torch.zeros(layout.hidden_size, layout.inner_size, device=device, requires_grad=True) for L in layers}

        def adder(d: torch.Tensor):
            return lambda x, out: out + (x.float() @ d.T).to(out.dtype)

        edits = {f"ft{L}": (layout.mlp_out_path(L), adder(d)) for L, d in dense.items()}
        rows = [target_row(ctx, i, r) for i, r in enumerate(requests)]
        pos = [(n, t - 1, r.full[t]) for n, r in enumerate(rows) for t in range(r.target_from, len(r.full))]
        at_rows = torch.tensor([p[0] for p in pos], device=device)
        at_pos = torch.tensor([p[1] for p in pos], device=device)
        tgt = torch.tensor([p[2] for p in pos], device=device)
        opt = torch.optim.Adam(list(dense.values()), lr=cfg.lr)
        for _ in range(cfg.steps):
            opt.zero_grad()
            hidden, _ = ctx.run([r.ids for r in rows], edit=edits, grad=True)
            loss = F.cross_entropy(ctx.logits(hidden[at_rows, at_pos]), tgt)
            if float(loss.detach()) < cfg.stop_loss:
                break
            loss.backward()
            opt.step()
            with torch.no_grad():
                for d in dense.values():
                    d.clamp_(-cfg.norm_constraint, cfg.norm_constraint)
        return self._delta({layout.weight_name(L): Factor(d.detach()) for L, d in dense.items()})
