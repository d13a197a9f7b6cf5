"""GRACE (Hartvigsen et al., 2023): a codebook of keys and values at one layer, with a deferral radius.

An edit's *keys* are the inputs of one MLP output projection at the positions that predict the
target's tokens (the prompt's last token, then each target token but the last); its *values* are
that projection's outputs there, optimised so the target follows. At query time a position whose
input lies within an entry's radius of its key gets the nearest such entry's value instead of the
projection's output; every other position is untouched, so the model is the unedited one wherever
no key is near. Inputs to a layer's MLP do not depend on that MLP's outputs, so the keys of an edit
do not depend on the other entries.

The codebook is built from the active deltas in order, with GRACE's rules: a new key within reach
of an entry that predicts the same token widens that entry's radius to cover it; one that predicts
another token shrinks both radii to half their distance, so neither answers for the other.
Radii are relative to the key's norm (``radius``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

from .adapters import AdapterMethod, Tail, token_rows
from .deltas import Delta
from .hooks import trace
from .requests import EditRequest

logger = logging.getLogger(__name__)


@dataclass
class GRACEConfig:
    layer: int | None = None  # default: a late layer (adapters.late_layer)
    radius: float = 0.25  # the deferral radius of a new entry, times its key's norm
    steps: int = 50  # value optimisation
    lr: float = 1.0
    stop_loss: float = 0.02


@dataclass
class Codebook:
    keys: Any = None  # [n, in]
    values: Any = None  # [n, out]
    radii: Any = None  # [n]
    labels: Any = None  # [n] token ids the entries predict

    def __len__(self) -> int:
        return 0 if self.keys is None else int(self.keys.shape[0])


class GRACE(AdapterMethod):
    name = "grace"
    config_type = GRACEConfig

    def empty_state(self) -> Codebook:
        return Codebook()

    def extend(self, book: Codebook, deltas: Sequence[Delta]) -> Codebook:
        import torch

        if not deltas:
            return book
        device = self.ctx.backend.device
        old = len(book)
        new = [d.extras for d in deltas]
        keys = torch.cat(([book.keys] if old else []) + [e["keys"].to(device).float() for e in new])
        values = torch.cat(([book.values] if old else []) + [e["values"].to(device).float() for e in new])
        radii = (book.radii.tolist() if old else []) + [r for e in new for r in e["radii"].tolist()]
        labels = (book.labels.tolist() if old else []) + [int(v) for e in new for v in e["labels"].tolist()]
        for i in range(max(old, 1), len(radii)):
            dist = (keys[:i] - keys[i]).norm(dim=-1)
            j = int(dist.argmin())
            dj = float(dist[j])
            if dj > radii[j] + radii[i]:
                continue
            if labels[j] == labels[i]:
                radii[j] = max(radii[j], dj)  # same answer: the older entry's reach covers this key
            else:  # another answer: neither entry may answer for the other's key
                radii[j] = min(radii[j], dj / 2)
                radii[i] = min(radii[i], dj / 2)
        return Codebook(keys, values, torch.tensor(radii, device=device), torch.tensor(labels, device=device))

    def forward(self, book: Codebook, x: Any, out: Any) -> Any:
        import torch

        if not len(book):
            return out
        flat = x.reshape(-1, x.shape[-1]).float()
        dist = torch.cdist(flat, book.keys)  # [positions, entries]
        inside = dist <= book.radii[None]
        if not bool(inside.any()):
            return out
        dist = torch.where(inside, dist, torch.full_like(dist, float("inf")))
        best = dist.argmin(-1)
        hit = inside.any(-1)
        new = out.reshape(-1, out.shape[-1]).clone()
        new[hit] = book.values[best[hit]].to(new.dtype)
        return new.view_as(out)

    def edit_one(self, req: EditRequest) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        cfg, ctx, path = self.config, self.ctx, self.adapter.path
        ids, positions, labels = token_rows(ctx, req)
        _, seen = ctx.run([ids], keep_input={"x": path}, keep_output={"x": path})
        pos = torch.tensor(positions, device=ctx.backend.device)
        keys = seen["x"].input[0, pos].float()
        value = seen["x"].output[0, pos].float().clone().requires_grad_(True)
        target = torch.tensor(labels, device=ctx.backend.device)

        def put(_x: Any, out: Any) -> Any:
            out = out.clone()
            out[0, pos] = value.to(out.dtype)
            return out

        opt = torch.optim.Adam([value], lr=cfg.lr)
        tail = Tail(ctx, [ids], self.layer)
        for step in range(cfg.steps):
            opt.zero_grad()
            with trace(ctx.backend.model, {"grace": path}, edit={"grace": put}, detach=False), torch.enable_grad():
                hidden = tail.run()
            logits = ctx.logits(hidden[0, pos])
            loss = F.cross_entropy(logits, target)
            if float(loss.detach()) < cfg.stop_loss and bool((logits.argmax(-1) == target).all()):
                break
            loss.backward()
            opt.step()
        logger.debug("grace: %s -> %s, %d step(s), loss %.3f", req.prompt, req.target, step + 1, float(loss.detach()))
        radii = cfg.radius * keys.norm(dim=-1)
        return {"keys": keys.detach(), "values": value.detach(), "radii": radii.detach(),
                "labels": target.float()}
