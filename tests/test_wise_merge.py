"""WISE's sharding and merging without a model: TIES-merging, the seeded masks, and the merged memories' routing."""

from __future__ import annotations

import pytest
import torch

from agentedit.parametric.wise_merge import MergedMemories, ties_merge


@pytest.fixture(autouse=True)
def _setup(small_torch):
    yield


def test_ties_elects_a_sign_per_entry_and_averages_only_the_changes_that_agree():
    a = torch.tensor([[2.0, -1.0, 0.0, 3.0]])
    b = torch.tensor([[4.0, 3.0, 0.0, 0.0]])
    c = torch.tensor([[-1.0, -3.0, 5.0, 0.0]])
    merged = ties_merge([a, b, c])
    # entry 0: sum +5 -> mean of 2 and 4; entry 1: sum -1 -> mean of -1 and -3; entry 2: only c; entry 3: only a
    assert torch.allclose(merged, torch.tensor([[3.0, -2.0, 5.0, 3.0]]))
    trimmed = ties_merge([a, b, c], density=0.5)  # each keeps its 2 largest entries before the election
    # a keeps 2 and 3, b keeps 4 and 3, c keeps -3 and 5: entry 1 is elected + (3 - 3 = 0 -> no sign, zero)
    assert torch.allclose(trimmed, torch.tensor([[3.0, 0.0, 5.0, 3.0]]))


def _memories(n: int, seed: int = 0) -> MergedMemories:
    gen = torch.Generator().manual_seed(1)
    side = MergedMemories(shard_size=4, subspaces=2, mask_ratio=0.5, seed=seed)
    for _ in range(n):
        side.add(torch.randn(6, 2, generator=gen), torch.randn(2, 10, generator=gen), torch.randn(10, generator=gen))
    return side


def test_masks_are_seeded_per_memory_and_subspace_and_edits_are_dealt_over_the_subspaces():
    side, again, other_seed = _memories(8), _memories(8), _memories(8, seed=3)
    assert torch.equal(side.mask(1, 0), again.mask(1, 0))  # a restart draws the same masks
    assert not torch.equal(side.mask(0, 0), side.mask(0, 1)) and not torch.equal(side.mask(0, 0), side.mask(1, 0))
    assert not torch.equal(side.mask(0, 0), other_seed.mask(0, 0))
    assert 0.3 < side.mask(0, 0).float().mean() < 0.7
    assert [side.subspace_of(i) for i in range(8)] == [0, 1, 0, 1, 0, 1, 0, 1]
    assert [side.shard_of(i) for i in range(8)] == [0, 0, 0, 0, 1, 1, 1, 1]


def test_a_memory_is_the_ties_merge_of_its_masked_subspaces_and_the_router_picks_the_strongest():
    side = _memories(3)  # memory 0 holds edits 0 and 2 in subspace 0 and edit 1 in subspace 1
    dense = [side.mask(0, i % 2) * (side.lefts[i] @ side.rights[i]) for i in range(3)]
    bias = [-(d @ side.centers[i]) for i, d in enumerate(dense)]
    sub0 = torch.cat([dense[0] + dense[2], (bias[0] + bias[2])[:, None]], 1)
    sub1 = torch.cat([dense[1], bias[1][:, None]], 1)
    want = ties_merge([sub0, sub1])
    d, b = side.merged(0)
    assert torch.allclose(d, want[:, :-1]) and torch.allclose(b, want[:, -1])

    x = torch.randn(2, 5, 10)
    out = torch.randn(2, 5, 6)
    shard, changes = side.route(x, out, threshold=0.0)
    assert shard.tolist() == [0, 0] and torch.allclose(side.added(shard, changes), x @ d.T + b)
    shard, _ = side.route(x, out, threshold=1e9)
    assert shard.tolist() == [-1, -1]
    side.add(torch.randn(6, 2), torch.randn(2, 10), torch.randn(10))  # a fourth edit changes memory 0 again
    assert not torch.allclose(side.merged(0)[0], d)
