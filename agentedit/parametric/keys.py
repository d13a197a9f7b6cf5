"""Where a request's subject sits in token space, and the keys/values found there.

A *key* is the input of a layer's MLP output projection at the subject's last token, averaged
over a few context prefixes (ROME's ``k*``); *values* are a module's outputs at that token in
the plain prompt. Pending (computed, not yet applied) deltas are passed as module edits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import EditError
from .context import EditContext
from .hooks import EditFn
from .requests import EditRequest

Pending = Mapping[str, tuple[str, EditFn]]


@dataclass(frozen=True)
class Row:
    """One tokenised text of one request: ids, the subject's last token, and the target's span (if any)."""

    request: int
    ids: tuple[int, ...]
    subject_at: int
    target_from: int = 0  # index of the first target token in ``full``; 0 when the row has no target
    full: tuple[int, ...] = ()


def prompt_row(ctx: EditContext, i: int, req: EditRequest, prefix: str = "") -> Row:
    encode = ctx.backend.encode
    before = prefix + req.template.split("{}", 1)[0]
    ids = encode(prefix + req.prompt)
    at = len(encode(before + req.subject)) - 1
    if at < 0 or at >= len(ids):
        raise EditError(f"cannot locate the subject {req.subject!r} in the tokens of {req.prompt!r}")
    return Row(i, tuple(ids), at)


def target_row(ctx: EditContext, i: int, req: EditRequest, prefix: str = "") -> Row:
    """The prompt followed by all but the last target token (teacher forcing)."""
    from ..backends.local import split_target

    base = prompt_row(ctx, i, req, prefix)
    try:
        full, k = split_target(ctx.backend, prefix + req.prompt, req.target)
    except Exception as exc:
        raise EditError(f"target {req.target!r} of edit {req.id or i} cannot be tokenised after its prompt: {exc}") from exc
    return Row(i, tuple(full[:-1]), base.subject_at, k, tuple(full))


def subject_keys(ctx: EditContext, requests: Sequence[EditRequest], layer: int, prefixes: Sequence[str],
                 pending: Pending | None = None) -> Any:
    """``[n_requests, in_features]``: keys at ``layer``, averaged over ``prefixes``."""
    import torch

    rows = [prompt_row(ctx, i, r, p) for i, r in enumerate(requests) for p in prefixes]
    _, seen = ctx.run([r.ids for r in rows], keep_input={"k": ctx.layout.mlp_out_path(layer)}, edit=pending)
    x = seen["k"].input
    picked = x[torch.arange(len(rows)), torch.tensor([r.subject_at for r in rows])].float()
    return picked.view(len(requests), len(prefixes), -1).mean(1)


def values_at(ctx: EditContext, requests: Sequence[EditRequest], path: str, pending: Pending | None = None,
              *, with_inputs: bool = False) -> Any:
    """Outputs of the module at ``path`` at the subject's last token of each plain prompt (and its inputs)."""
    import torch

    rows = [prompt_row(ctx, i, r) for i, r in enumerate(requests)]
    label = {"v": path}
    _, seen = ctx.run([r.ids for r in rows], keep_output=label, keep_input=label if with_inputs else None, edit=pending)
    idx = (torch.arange(len(rows)), torch.tensor([r.subject_at for r in rows]))
    out = seen["v"].output[idx].float()
    return (out, seen["v"].input[idx].float()) if with_inputs else out
