"""WISE's side memories as tensors: every edit's factors, grouped into shards, scored per input.

Edit ``i`` adds ``Lᵢ (Rᵢ x − oᵢ)`` to the projection's output when its shard answers (``Lᵢ``:
``[out, r]``, ``Rᵢ``: ``[r, in]``, ``oᵢ = Rᵢ μ``). A shard's addition is the sum over its edits,
so its activation score at a position, ``‖Σ Lᵢ uᵢ‖`` with ``uᵢ = Rᵢ x − oᵢ``, is ``√(uᵀ G u)``
with ``G = LᵀL`` of the shard's concatenated factors: every shard is scored without forming its
``[out, in]`` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


class ShardedMemories:
    """What both layouts of the side memories share: edits dealt into memories of ``shard_size`` in order, each
    edit's own score (``owns``), and the routing of every input to at most one memory (:func:`pick`). A layout says
    how a memory scores an input and what it adds (:meth:`scores`, ``added``)."""

    shard_size: int
    lefts: list[Any]
    owns: list[float]
    _owns: Any = None  # (edits counted, per-memory tensor): owned()'s cache, not a dataclass field of the layouts

    def __len__(self) -> int:
        return len(self.lefts)

    def shard_of(self, edit: int) -> int:
        return edit // self.shard_size

    def scores(self, x: Any, out: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def owned(self, n_shards: int, device: Any) -> Any:
        """Per memory, the lowest score its edits reached on their own prompts when trained; cached until an edit
        joins (every forward pass asks)."""
        import torch

        if self._owns is None or self._owns[0] != len(self.owns):
            per = [min(self.owns[s * self.shard_size:(s + 1) * self.shard_size]) for s in range(n_shards)]
            self._owns = (len(self.owns), torch.tensor(per, device=device))
        return self._owns[1]

    def route(self, x: Any, out: Any, threshold: float) -> tuple[Any, Any]:
        """``(memory, what the layout's ``added`` needs)``: per row the memory :func:`pick` chooses (-1: none)."""
        score, extra = self.scores(x, out)
        return pick(score, self.owned(score.shape[-1], score.device), threshold), extra


@dataclass
class SideMemories(ShardedMemories):
    lefts: list[Any] = field(default_factory=list)  # per edit, [out, r]
    rights: list[Any] = field(default_factory=list)  # per edit, [r, in]
    offsets: list[Any] = field(default_factory=list)  # per edit, [r]
    owns: list[float] = field(default_factory=list)  # per edit, the score its memory reached on it when trained
    shard_size: int = 1
    last_route: Any = None  # per row of the last multi-token pass: the shard that answered, -1 for none
    _packed: Any = None

    def add(self, left: Any, right: Any, offset: Any, own: float = 1.0) -> None:
        self.owns.append(own)
        self.lefts.append(left)
        self.rights.append(right)
        self.offsets.append(offset)
        self._packed = None

    def add_stored(self, e: dict[str, Any], j: int, at: int, n: int, own: float) -> None:
        """Edit ``j`` of a delta's stored tensors ``e``, whose factors are rows ``at`` to ``at + n``."""
        self.add(e["left"][:, at:at + n], e["right"][at:at + n], e["offset"][at:at + n], own)

    def shard_edits(self, shard: int) -> range:
        return range(shard * self.shard_size, min(len(self), (shard + 1) * self.shard_size))

    def shard_change(self, shard: int) -> tuple[Any, Any, Any]:
        """``(L, R, o)`` of one shard (its edits' factors side by side); empty tensors for a new shard."""
        import torch

        idx = list(self.shard_edits(shard))
        if not idx:
            return None, None, None
        return (torch.cat([self.lefts[i] for i in idx], 1), torch.cat([self.rights[i] for i in idx]),
                torch.cat([self.offsets[i] for i in idx]))

    def next_edit(self, out: int, width: int, device: Any) -> tuple[Callable[[Any], Any] | None, None]:
        """What the next edit trains against: the change its memory already makes (None when it opens a new one);
        no mask confines it."""
        left, right, offset = self.shard_change(self.shard_of(len(self)))
        if left is None:
            return None, None
        return (lambda x: (x.float() @ right.T - offset) @ left.T), None

    def packed(self) -> tuple[Any, Any, Any, Any, Any, Any]:
        """``(R, o, shard, slot, L, G)``: all edits' rows stacked, each row's shard and slot in it, and per shard
        its padded ``L`` ``[S, out, r_max]`` and ``G = LᵀL`` ``[S, r_max, r_max]``."""
        import torch

        if self._packed is None:
            n_shards = self.shard_of(len(self) - 1) + 1
            shards = [self.shard_change(s) for s in range(n_shards)]
            r_max = max(s[0].shape[1] for s in shards)
            out = self.lefts[0].shape[0]
            lefts = self.lefts[0].new_zeros(n_shards, out, r_max)
            shard_ids, slots = [], []
            for s, (left, _, _) in enumerate(shards):
                lefts[s, :, : left.shape[1]] = left
                shard_ids += [s] * left.shape[1]
                slots += list(range(left.shape[1]))
            dev = lefts.device
            self._packed = (torch.cat(self.rights), torch.cat(self.offsets), torch.tensor(shard_ids, device=dev),
                            torch.tensor(slots, device=dev), lefts, lefts.transpose(1, 2) @ lefts)
        return self._packed

    def scores(self, x: Any, out: Any) -> tuple[Any, Any]:
        """``([b, t, S] activation scores, u)``: per position, each shard's change relative to the output's size, and
        the per-shard coordinates ``u`` ``[batch, seq, S, r_max]``."""
        import torch

        rights, offsets, shard_ids, slots, lefts, gram = self.packed()
        flat = x.float() @ rights.T - offsets  # [b, t, rows]
        u = flat.new_zeros(*flat.shape[:2], lefts.shape[0], lefts.shape[2])
        u[:, :, shard_ids, slots] = flat
        sq = torch.einsum("btsr,srq,btsq->bts", u, gram, u).clamp_min(0)
        return sq.sqrt() / out.float().norm(dim=-1).clamp_min(1e-6)[..., None], u

    def added(self, shard: Any, u: Any) -> Any:
        """The addition to the output of each row from its shard (zeros for rows without one)."""
        import torch

        _, _, _, _, lefts, _ = self.packed()
        out = u.new_zeros(*u.shape[:2], lefts.shape[1])
        for b in torch.nonzero(shard >= 0).flatten().tolist():
            s = int(shard[b])
            out[b] = u[b, :, s] @ lefts[s].T
        return out


def pick(score: Any, owns: Any, threshold: float) -> Any:
    """Per row, the memory that answers (-1: none). A memory may answer where its highest score over the positions
    passes ``threshold`` times its score on its own edits (a memory trained to outscore earlier ones on its
    prompt also scores higher on everything); among those, the highest score answers."""
    import torch

    best = score.max(dim=1).values  # [b, S]
    may = best > threshold * owns[None]
    val, memory = torch.where(may, best, torch.full_like(best, -1.0)).max(dim=-1)
    return torch.where(may.any(dim=-1), memory, torch.full_like(memory, -1))
