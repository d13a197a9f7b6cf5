"""WISE (Wang et al., 2024): side copies of one MLP output projection hold the edits; a router picks one per input.

A side memory is ``W + D``, ``D`` the sum of its edits' changes. An edit's change acts on the input
less ``μ`` (the mean input over unrelated text) and is ``A Xᵀ``: ``X`` holds the projection's inputs
(less ``μ``) at the edit's tokens, from its subject to the end of its prompt under a few context
prefixes and through its target, the span plain gradient descent on the copy would move in; ``A``
is trained so the target follows when the side memory answers. The router is WISE's activation
score: per position, the norm of a side memory's change to the output relative to the output
(``‖D x‖ / ‖W x‖``); an input whose highest score passes ``threshold`` is answered by the side
memory scoring highest, any other by the main weights, untouched. Training adds WISE's margins:
the edit's score above ``edit_margin``, unrelated text's (rows of the model's own sampled text, and
a few earlier edits' prompts, which their own side memories answer) below ``free_margin``, under the
whole side memory the edit joins.

Edits fill side memories of ``shard_size`` edits in order, and the router retrieves among them (WISE's
retrieval variant). With ``subspaces`` > 1 a memory's edits are dealt over that many random masks of the
weights and the memory is their TIES merge (WISE's knowledge sharding and merging, :mod:`.wise_merge`);
with 1, each memory is the plain sum of its edits' low-rank changes (:mod:`.wise_memory`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import ConfigError, EditError
from .adapters import AdapterMethod, Tail, token_rows
from .context import CONTEXT_PREFIXES
from .deltas import Delta
from .hooks import trace
from .keys import prompt_row
from .requests import EditRequest
from .wise_memory import SideMemories
from .wise_merge import MergedMemories

logger = logging.getLogger(__name__)


@dataclass
class WISEConfig:
    layer: int | None = None  # default: a late layer (adapters.late_layer)
    threshold: float = 0.5  # route to the side memory when the highest score of an input passes this
    edit_margin: float = 1.0  # trained: an edit's own score at least this
    rival_gap: float = 0.5  # trained: an edit's own score at least this above any other memory's on its prompt
    free_margin: float = 0.1  # trained: unrelated text's score at most this
    route_weight: float = 1.0
    steps: int = 30
    lr: float = 0.1
    stop_loss: float = 0.05
    n_contexts: int = 2  # context prefixes the edit is trained under (the plain prompt first)
    negatives: int = 4  # rows of the model's own sampled text used as unrelated inputs
    negative_length: int = 16
    route_tolerance: float = 0.05  # training stops once the target is learnt and the margins are within this
    replay: int = 4  # earlier edits' prompts the new edit is trained not to answer for
    shard_size: int = 1  # edits per side memory; the router picks the side memory that answers (WISE-Retrieve)
    subspaces: int = 1  # > 1: a memory's edits are dealt over this many random masks and TIES-merged (WISE-Merge)
    mask_ratio: float = 0.2  # the share of the weights each subspace's mask keeps
    merge_density: float = 1.0  # TIES: the share of each subspace's change kept before the sign election
    mask_seed: int = 0


class WISE(AdapterMethod):
    name = "wise"
    config_type = WISEConfig

    def layout(self) -> dict[str, Any]:
        """What a stored edit's meaning depends on: a delta made under another layout cannot join this one's memories."""
        c = self.config
        return {"shard_size": max(1, c.shard_size), "subspaces": c.subspaces, "mask_ratio": c.mask_ratio,
                "mask_seed": c.mask_seed}

    def empty_state(self) -> SideMemories | MergedMemories:
        c = self.config
        if c.subspaces < 1 or not 0.0 < c.mask_ratio <= 1.0 or not 0.0 < c.merge_density <= 1.0:
            raise ConfigError(f"wise: subspaces must be at least 1 and mask_ratio and merge_density in (0, 1]; got "
                              f"{c.subspaces}, {c.mask_ratio}, {c.merge_density}")
        if c.subspaces == 1:
            return SideMemories(shard_size=max(1, c.shard_size))
        if c.shard_size < c.subspaces:
            raise ConfigError(f"wise: {c.subspaces} subspaces need side memories of at least as many edits; "
                              f"shard_size is {c.shard_size}: raise it (WISE merges a memory's subspaces into one)")
        return MergedMemories(c.shard_size, c.subspaces, c.mask_ratio, c.merge_density, c.mask_seed)

    def extend(self, side: SideMemories | MergedMemories, deltas: Sequence[Delta]) -> SideMemories | MergedMemories:
        dev = self.ctx.backend.device
        want = self.layout()
        for d in deltas:
            made = d.meta.get("wise_layout", {"subspaces": 1})
            if made["subspaces"] != want["subspaces"] or (want["subspaces"] > 1 and made != want):
                raise EditError(f"wise delta {d.id} was made with {made}, this editor's side memories are laid out "
                                f"as {want}; open the store with the WISE settings its edits were made with")
            e = {k: v.to(dev).float() for k, v in d.extras.items()}
            at = 0
            for j, n in enumerate(e["ranks"].long().tolist()):  # one delta may hold several requests' edits
                own = float(e["own"][j]) if "own" in e else self.config.edit_margin  # older deltas: the trained margin
                side.add_stored(e, j, at, n, own)
                at += n
        return side

    def delta_meta(self) -> dict[str, Any]:
        return {"wise_layout": self.layout()}

    def forward(self, side: SideMemories, x: Any, out: Any) -> Any:
        import torch

        if not len(side):
            return out
        shard, u = side.route(x, out, self.config.threshold)
        last = side.last_route
        if x.shape[1] == 1 and last is not None and last.shape == shard.shape:
            shard = torch.where(last >= 0, last, shard)  # a generation step keeps the shard its prompt took
        side.last_route = shard
        if not bool((shard >= 0).any()):
            return out
        return out + side.added(shard, u).to(out.dtype)

    def cat_dim(self, key: str) -> int:
        return 1 if key == "left" else 0

    def _earlier_prompts(self) -> list[list[int]]:
        """Token ids of up to ``replay`` earlier edits' prompts, spread over the sequence: the new edit must not
        answer for them (their own side memories do)."""
        prompts = [r["prompt"] for d in self.adapter.active() for r in d.meta.get("requests", [])]
        if not prompts or self.config.replay <= 0:
            return []
        n = min(self.config.replay, len(prompts))
        picks = sorted({round(i * (len(prompts) - 1) / max(n - 1, 1)) for i in range(n)})
        return [self.ctx.backend.encode(prompts[i]) for i in picks]

    def _negatives(self) -> list[list[int]]:
        """Rows of text the unedited model writes itself (its own small sample, cached beside the statistics' corpora)."""
        from .corpus import SampledCorpus

        key = ("wise-negatives", self.config.negatives, self.config.negative_length)
        if key not in self.ctx.extra:
            corpus = SampledCorpus(n_samples=self.config.negatives, length=self.config.negative_length)
            with self.ctx.stack.pristine():  # the unedited model's text
                where = self.ctx.cache_dir / "stats" / self.ctx.fingerprint / "corpora" if self.ctx.cache_dir else None
                rows = corpus.rows(self.ctx.backend, where)  # per model, where the statistics keep theirs
            self.ctx.extra[key] = [list(r) for r in rows]
        return self.ctx.extra[key]

    @staticmethod
    def _rivals(side: SideMemories | MergedMemories, x: Any, out: Any, valid: Any) -> Any:
        """Per row, the highest score any other memory than the one the next edit joins reaches on it (0: none)."""
        import torch

        if not len(side):
            return x.new_zeros(x.shape[0])
        score, _ = side.scores(x, out)
        score = torch.where(valid[..., None], score, torch.zeros_like(score)).max(dim=1).values  # [rows, S]
        joined = side.shard_of(len(side))
        if joined < score.shape[1]:  # its own memory is trained with it
            score[:, joined] = 0
        return score.max(dim=-1).values

    def edit_one(self, req: EditRequest) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        cfg, ctx, path = self.config, self.ctx, self.adapter.path
        dev = ctx.backend.device
        prefixes = CONTEXT_PREFIXES[: max(1, cfg.n_contexts)]
        rows = [token_rows(ctx, req, p) for p in prefixes]
        negatives = self._negatives() + self._earlier_prompts()
        ids = [r[0] for r in rows] + negatives
        lengths = torch.tensor([len(i) for i in ids], device=dev)
        n_edit = len(rows)
        with torch.no_grad(), self.adapter.standing_aside():  # the projection's own output, no memory's change
            _, seen = ctx.run(ids, keep_input={"x": path}, keep_output={"x": path})
        x = seen["x"].input.float()
        starts = [prompt_row(ctx, 0, req, p).subject_at - len(ctx.backend.encode(req.subject)) + 1 for p in prefixes]
        starts = [max(0, s) for s in starts]  # X: the subject's tokens onwards, so text before it keeps the main memory
        valid = torch.arange(x.shape[1], device=dev)[None] < lengths[:, None]
        free = x[n_edit:][valid[n_edit:]]
        # the common part of every input: the side memory reads what differs from it (none without unrelated rows)
        center = free.mean(0) if len(free) else x.new_zeros(x.shape[-1])
        span = torch.cat([x[i, s:len(rows[i][0])] for i, s in enumerate(starts)]) - center  # [n_pos, in]
        # the same span, orthonormal and scaled so its coordinates are O(1) on the edit's tokens, and A in units
        # of the output's size: plain Adam steps then suit any model
        right = torch.linalg.qr(span.T).Q.T / span.norm(dim=-1).mean().clamp_min(1e-6)
        out_scale = seen["x"].output[:n_edit].float().norm(dim=-1).mean() / ctx.layout.hidden_size ** 0.5
        side = self.adapter.state() if self.adapter.active() else self.empty_state()
        held, mask = side.next_edit(ctx.layout.hidden_size, x.shape[-1], dev)  # what its memory holds, its mask
        # the router answers with the memory scoring highest: the edit's must outscore every other on its own rows
        need = (self._rivals(side, x[:n_edit], seen["x"].output[:n_edit], valid[:n_edit]) + cfg.rival_gap
                ).clamp_min(cfg.edit_margin)
        a = torch.zeros(ctx.layout.hidden_size, right.shape[0], device=dev, requires_grad=True)
        t_rows = torch.tensor([i for i, r in enumerate(rows) for _ in r[1]], device=dev)
        t_pos = torch.tensor([p for r in rows for p in r[1]], device=dev)
        t_ids = torch.tensor([t for r in rows for t in r[2]], device=dev)
        seen_scores: dict[str, Any] = {}

        def side_on(xin: Any, out: Any) -> Any:  # edit rows answered by the side memory; all rows scored
            if mask is None:
                added = ((xin.float() - center) @ right.T) @ (a * out_scale).T
            else:  # only the entries under this subspace's mask change
                added = (xin.float() - center) @ (mask * ((a * out_scale) @ right)).T
            if held is not None:  # the edits already in this memory (or subspace)
                added = added + held(xin)
            score = added.norm(dim=-1) / out.float().norm(dim=-1).clamp_min(1e-6)
            seen_scores["s"] = torch.where(valid, score, torch.zeros_like(score)).max(dim=-1).values
            edit_rows = (torch.arange(out.shape[0], device=dev) < n_edit).to(out.dtype)[:, None, None]
            return out + added.to(out.dtype) * edit_rows

        opt = torch.optim.Adam([a], lr=cfg.lr)
        with self.adapter.standing_aside():  # the side memory enters through the training hook only
            tail = Tail(ctx, ids, self.layer)
            for step in range(cfg.steps):
                opt.zero_grad()
                with trace(ctx.backend.model, {"wise": path}, edit={"wise": side_on}, detach=False), torch.enable_grad():
                    hidden = tail.run()
                nll = F.cross_entropy(ctx.logits(hidden[t_rows, t_pos]), t_ids)
                s = seen_scores["s"]
                route = F.relu(need - s[:n_edit]).mean()
                if len(s) > n_edit:
                    route = route + F.relu(s[n_edit:] - cfg.free_margin).mean()
                loss = nll + cfg.route_weight * route
                if float(nll.detach()) < cfg.stop_loss and float(route.detach()) <= cfg.route_tolerance:
                    break
                loss.backward()
                opt.step()
        logger.debug("wise: %s -> %s, %d step(s), nll %.3f, route loss %.3f", req.prompt, req.target, step + 1,
                     float(nll.detach()), float(route.detach()))
        own = max(float(s[:n_edit].detach().min()), cfg.edit_margin)  # where the router's relative gate starts
        return {"left": (a * out_scale).detach(), "right": right, "offset": right @ center, "center": center[None],
                "own": torch.tensor([own], device=dev),
                "ranks": torch.tensor([float(right.shape[0])], device=dev)}
