"""WISE's knowledge sharding and merging: side memories whose edits are split over random subspaces, then merged.

A side memory holds ``shard_size`` edits. Its edits are dealt over ``subspaces`` random masks of the
projection's weights (each keeps ``mask_ratio`` of the entries, drawn from a seeded generator, so
a restart draws the same masks): edit ``j`` of a memory writes only under mask ``j mod subspaces``,
and trains against what that subspace already holds. The memory's change is then the TIES merge of
its subspaces' changes (Yadav et al., 2023: trim each to its largest ``density`` share, elect each
entry's sign by the summed change, average the entries that agree with it), as WISE merges its
shards into one side memory. An edit's own change is ``(M ⊙ L R)(x − μ)``: the masked dense form of
the factors :mod:`.wise` trains, so each memory is one ``[out, in]`` matrix and bias, built from the
stored factors whenever the active edits change.

The router is the same activation score as in the unmerged memories: per input, the memory whose
change is largest relative to the projection's output answers if that score passes the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .wise_memory import ShardedMemories


def ties_merge(changes: list[Any], density: float = 1.0) -> Any:
    """TIES-merging of same-shaped changes: trim each to its top ``density`` share by magnitude, elect a sign per
    entry from the sum, and average, per entry, the changes that agree with that sign (zeros where none does)."""
    import torch

    stack = torch.stack(changes)
    if density < 1.0:
        flat = stack.reshape(len(changes), -1).abs()
        keep = max(1, int(round(flat.shape[1] * density)))
        floor = flat.topk(keep, dim=1).values[:, -1:]
        stack = torch.where(flat >= floor, stack.reshape(len(changes), -1), torch.zeros_like(flat)).view_as(stack)
    sign = torch.sign(stack.sum(0))
    agree = (torch.sign(stack) == sign) & (stack != 0)
    return (stack * agree).sum(0) / agree.sum(0).clamp_min(1)


@dataclass
class MergedMemories(ShardedMemories):
    shard_size: int
    subspaces: int
    mask_ratio: float
    density: float = 1.0
    seed: int = 0
    lefts: list[Any] = field(default_factory=list)  # per edit, [out, r]
    rights: list[Any] = field(default_factory=list)  # per edit, [r, in]
    centers: list[Any] = field(default_factory=list)  # per edit, [in]
    owns: list[float] = field(default_factory=list)  # per edit, the score its subspace reached on it when trained
    last_route: Any = None
    shape: tuple[int, int, str] | None = None  # (out, in, device) of the projection, known from the first edit
    _masks: dict[tuple[int, int], Any] = field(default_factory=dict)
    _merged: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # shard -> (D [out, in], b [out])

    def add(self, left: Any, right: Any, center: Any, own: float = 1.0) -> None:
        self.owns.append(own)
        self.shape = self.shape or (left.shape[0], right.shape[1], str(left.device))
        self._merged.pop(self.shard_of(len(self)), None)
        self.lefts.append(left)
        self.rights.append(right)
        self.centers.append(center)

    def add_stored(self, e: dict[str, Any], j: int, at: int, n: int, own: float) -> None:
        """Edit ``j`` of a delta's stored tensors ``e``, whose factors are rows ``at`` to ``at + n``."""
        self.add(e["left"][:, at:at + n], e["right"][at:at + n], e["center"][j], own)

    def subspace_of(self, edit: int) -> int:
        return (edit % self.shard_size) % self.subspaces

    def mask(self, shard: int, subspace: int) -> Any:
        """The seeded random mask of one subspace of one memory (the same on every restart and device)."""
        import torch

        key = (shard, subspace)
        if key not in self._masks:
            if self.shape is None:
                raise ValueError("the projection's shape is not known before the first edit")
            out, width, device = self.shape
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + shard * 1_009 + subspace)
            self._masks[key] = (torch.rand(out, width, generator=gen) < self.mask_ratio).to(device)
        return self._masks[key]

    def _subspace(self, shard: int, subspace: int, upto: int) -> tuple[Any, Any] | None:
        """``(D, b)`` of the edits before ``upto`` in one subspace of one memory; None when it holds none."""
        idx = [i for i in range(shard * self.shard_size, min(upto, (shard + 1) * self.shard_size))
               if self.subspace_of(i) == subspace]
        if not idx:
            return None
        mask = self.mask(shard, subspace)
        dense = sum(mask * (self.lefts[i] @ self.rights[i]) for i in idx)
        bias = -sum((mask * (self.lefts[i] @ self.rights[i])) @ self.centers[i] for i in idx)
        return dense, bias

    def next_edit(self, out: int, width: int, device: Any) -> tuple[Callable[[Any], Any] | None, Any]:
        """What the next edit trains against: the change its subspace already makes (None when empty), and its mask."""
        n = len(self)
        shard, sub = self.shard_of(n), self.subspace_of(n)
        self.shape = self.shape or (out, width, str(device))
        held = self._subspace(shard, sub, n)
        base = None if held is None else (lambda x, d=held[0], b=held[1]: x.float() @ d.T + b)
        return base, self.mask(shard, sub)

    def merged(self, shard: int) -> tuple[Any, Any]:
        if shard not in self._merged:
            parts = [p for s in range(self.subspaces) if (p := self._subspace(shard, s, len(self))) is not None]
            if len(parts) == 1:
                self._merged[shard] = parts[0]
            else:
                import torch

                both = ties_merge([torch.cat([d, b[:, None]], 1) for d, b in parts], self.density)
                self._merged[shard] = (both[:, :-1].contiguous(), both[:, -1].contiguous())
        return self._merged[shard]

    def scores(self, x: Any, out: Any) -> tuple[Any, Any]:
        """``([b, t, S] activation scores, changes)``: per position, each memory's change relative to the output's
        size, and the changes themselves ``[batch, seq, S, out]``."""
        import torch

        n_shards = self.shard_of(len(self) - 1) + 1
        xf = x.float()
        changes = torch.stack([xf @ d.T + b for d, b in (self.merged(s) for s in range(n_shards))], dim=2)
        return changes.norm(dim=-1) / out.float().norm(dim=-1).clamp_min(1e-6)[..., None], changes

    def added(self, shard: Any, changes: Any) -> Any:
        out = changes.new_zeros(*changes.shape[:2], changes.shape[-1])
        for b in (shard >= 0).nonzero().flatten().tolist():
            out[b] = changes[b, :, int(shard[b])]
        return out
