"""The value each edit wants at one module: ROME's ``v*`` / MEMIT's ``z``, found by gradient descent.

A vector ``δ`` per request is added to the module's output at the subject's last token; it is
optimised so the target follows the prompt under several context prefixes, while a KL term keeps
the model's idea of the subject ("{subject} is a") and a weight decay keeps ``δ`` small. The
weights are never changed: pending deltas and ``δ`` enter through hooks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

from .context import EditContext
from .keys import Pending, Row, prompt_row, target_row, values_at
from .requests import EditRequest

logger = logging.getLogger(__name__)


@dataclass
class TargetConfig:
    """Hyper-parameters of the target optimisation (ROME's defaults, fewer steps and contexts on a CPU)."""

    steps: int = 20
    lr: float = 0.5
    kl_factor: float = 0.0625
    weight_decay: float = 0.5
    clamp_norm: float = 4.0  # ‖δ‖ ≤ clamp_norm · ‖value‖
    stop_loss: float = 0.05
    n_contexts: int = 4
    chunk: int = 8  # requests optimised together in one batch
    kl_prompt: str = "{} is a"


def optimise_targets(ctx: EditContext, requests: Sequence[EditRequest], path: str, cfg: TargetConfig,
                     prefixes: Sequence[str], pending: Pending | None = None) -> tuple[Any, Any]:
    """``(targets, values)`` of shape ``[n, d]``: wanted and current outputs of ``path`` at each subject."""
    import torch

    values = values_at(ctx, requests, path, pending)
    targets = []
    for start in range(0, len(requests), cfg.chunk):
        chunk = list(requests[start:start + cfg.chunk])
        deltas = _optimise_chunk(ctx, chunk, path, cfg, prefixes[: max(1, cfg.n_contexts)], values[start:start + len(chunk)],
                                 pending)
        targets.append(values[start:start + len(chunk)] + deltas)
    return torch.cat(targets), values


def _optimise_chunk(ctx: EditContext, reqs: list[EditRequest], path: str, cfg: TargetConfig, prefixes: Sequence[str],
                    values: Any, pending: Pending | None) -> Any:
    import torch
    import torch.nn.functional as F

    rows: list[Row] = [target_row(ctx, i, r, p) for i, r in enumerate(reqs) for p in prefixes]
    kl_rows = [prompt_row(ctx, i, EditRequest(cfg.kl_prompt, r.subject, r.target)) for i, r in enumerate(reqs)]
    every = rows + kl_rows
    device = ctx.backend.device
    row_req = torch.tensor([r.request for r in every], device=device)
    row_idx = torch.arange(len(every), device=device)
    subj = torch.tensor([r.subject_at for r in every], device=device)
    # target positions: row r predicts full[t] at position t - 1
    t_rows, t_pos, t_ids, t_req = [], [], [], []
    for n, r in enumerate(rows):
        for t in range(r.target_from, len(r.full)):
            t_rows.append(n)
            t_pos.append(t - 1)
            t_ids.append(r.full[t])
            t_req.append(r.request)
    t_rows_t, t_pos_t = torch.tensor(t_rows, device=device), torch.tensor(t_pos, device=device)
    t_ids_t, t_req_t = torch.tensor(t_ids, device=device), torch.tensor(t_req, device=device)
    counts = torch.bincount(t_req_t, minlength=len(reqs)).float()
    kl_at = (torch.arange(len(rows), len(every), device=device), torch.tensor([len(r.ids) - 1 for r in kl_rows], device=device))

    delta = torch.zeros(len(reqs), values.shape[-1], device=device, requires_grad=True)
    norms = values.norm(dim=-1).clamp_min(1e-6)

    def add_delta(_x: Any, out: Any) -> Any:
        add = torch.zeros_like(out)
        add[row_idx, subj] = delta[row_req].to(out.dtype)
        return out + add

    edits = {**(pending or {}), "__target__": (path, add_delta)}
    ids = [r.ids for r in every]
    with torch.no_grad():
        hidden, _ = ctx.run(ids, edit=pending)
        kl_ref = F.log_softmax(ctx.logits(hidden[kl_at]), dim=-1)
    opt = torch.optim.Adam([delta], lr=cfg.lr)
    nll = torch.zeros(len(reqs))
    for step in range(cfg.steps):
        opt.zero_grad()
        hidden, _ = ctx.run(ids, edit=edits, grad=True)
        logp = F.log_softmax(ctx.logits(hidden[t_rows_t, t_pos_t]), dim=-1)
        tok_nll = -logp[torch.arange(len(t_ids), device=device), t_ids_t]
        nll = torch.zeros(len(reqs), device=device).index_add(0, t_req_t, tok_nll) / counts
        kl_new = F.log_softmax(ctx.logits(hidden[kl_at]), dim=-1)
        kl = F.kl_div(kl_new, kl_ref, log_target=True, reduction="none").sum(-1)
        decay = delta.norm(dim=-1) ** 2 / norms**2
        loss = (nll + cfg.kl_factor * kl + cfg.weight_decay * decay).sum()
        if float(nll.detach().max()) < cfg.stop_loss:
            break
        loss.backward()
        opt.step()
        with torch.no_grad():
            scale = (cfg.clamp_norm * norms / delta.norm(dim=-1).clamp_min(1e-12)).clamp(max=1.0)
            delta.mul_(scale[:, None])
    logger.debug("targets at %s: %d step(s), nll %s", path, step + 1, [round(float(v), 3) for v in nll.detach()])
    return delta.detach()
