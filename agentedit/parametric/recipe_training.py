"""Training RECIPE's prompt encoder for one LLM (``agentedit train-recipe`` with an ``hf:`` model).

Each training case is an edit (prompt and new target), a paraphrase of its prompt and an unrelated prompt. With
the case's own continuous prompt in front, the frozen LLM should produce the target after the prompt
(reliability) and after the paraphrase (generality), and its next-token distribution after the unrelated
prompt should stay what it was without a prompt (locality: what a wrong retrieval costs, KL divergence). Only
the encoder learns. A slice of the cases is held back and reports the three figures on unseen edits. Runs on
the model's device: a GPU as is, the CPU at small scale (``n_cases`` and ``minutes`` bound it).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

logger = logging.getLogger(__name__)


def _rows(backend: Any, cases: Sequence[dict[str, str]]) -> list[dict[str, Any]]:
    """Token rows per case: ``rel``/``gen`` (ids, index where the target starts) and ``free`` (ids)."""
    from ..backends.local import split_target
    from ..errors import ConfigError
    from ..records import make_statement

    out = []
    for c in cases:
        try:
            rel, gen = split_target(backend, c["prompt"], c["target"]), split_target(backend, c["rephrase"], c["target"])
        except ConfigError:
            continue
        free = backend.encode(c["free"])
        out.append({**c, "statement": c.get("statement") or make_statement(c["prompt"], c["target"]), "rel": rel, "gen": gen, "free_ids": free, "target_ids": rel[0][rel[1]:]})
    return out


def prefixed_hidden(ctx: Any, prompts: Any, rows: Sequence[Sequence[int]]) -> Any:
    """Final hidden states ``[B, T, d]`` of right-padded ``rows``, each after its prompt (``[B, k, d]``), prompt
    positions cut. The model's own hooks stand aside (the caller holds :meth:`DeltaStack.pristine`)."""
    import torch

    from .arch import module

    ids, mask = ctx.pad(rows)
    tokens = ctx.backend.model.get_input_embeddings()(ids)
    k = prompts.shape[1]
    full = torch.cat([torch.ones(len(rows), k, dtype=mask.dtype, device=mask.device), mask], dim=1)
    body = module(ctx.backend.model, ctx.layout.body_path)
    out = body(inputs_embeds=torch.cat([prompts.to(tokens.dtype), tokens], dim=1), attention_mask=full, use_cache=False)
    return out.last_hidden_state[:, k:]


def _plain_last(ctx: Any, rows: Sequence[Sequence[int]]) -> Any:
    """Log-probabilities of the next token after each row, without a prompt."""
    import torch

    out = []
    with torch.no_grad():
        for at in range(0, len(rows), 16):
            chunk = rows[at:at + 16]
            hidden = ctx.body(*ctx.pad(chunk))
            last = torch.tensor([len(r) - 1 for r in chunk], device=hidden.device)
            out.append(ctx.logits(hidden[torch.arange(len(chunk), device=hidden.device), last]).log_softmax(-1))
    return torch.cat(out)


class _Batch:
    """One step's rows: each case's prompt and paraphrase (with target) and its unrelated prompt."""

    def __init__(self, ctx: Any, cases: list[dict[str, Any]], plain: Any) -> None:
        import torch

        dev = ctx.backend.device
        self.rows = [c["rel"][0][:-1] for c in cases] + [c["gen"][0][:-1] for c in cases] + [c["free_ids"] for c in cases]
        r, p, t = [], [], []
        for j, c in enumerate(cases):
            for i, (full, at) in enumerate((c["rel"], c["gen"])):
                for pos in range(at - 1, len(full) - 1):
                    r.append(i * len(cases) + j)
                    p.append(pos)
                    t.append(full[pos + 1])
        self.t_rows, self.t_pos, self.t_ids = (torch.tensor(x, device=dev) for x in (r, p, t))
        n = len(cases)
        self.free_rows = torch.arange(2 * n, 3 * n, device=dev)
        self.free_last = torch.tensor([len(c["free_ids"]) - 1 for c in cases], device=dev)
        self.plain = plain
        self.n = n


def _losses(ctx: Any, encoder: Any, vecs: Any, cases: list[dict[str, Any]], plain: Any
            ) -> tuple[Any, Any, Any, Any, Any]:
    """``(target NLL, locality KL, logits at target positions, log-probs after each unrelated prompt with the case's
    prompt in front, batch)`` of a batch of cases."""
    import torch.nn.functional as F

    from .recipe import encode

    b = _Batch(ctx, cases, plain)
    prompts = encode(ctx, encoder, vecs, [c["target_ids"] for c in cases])
    hidden = prefixed_hidden(ctx, prompts.repeat(3, 1, 1), b.rows)
    logits = ctx.logits(hidden[b.t_rows, b.t_pos])
    nll = F.cross_entropy(logits, b.t_ids)
    free = ctx.logits(hidden[b.free_rows, b.free_last]).log_softmax(-1)
    kl = F.kl_div(free, plain, log_target=True, reduction="batchmean")
    return nll, kl, logits, free, b


def evaluate(ctx: Any, encoder: Any, vecs: Any, cases: list[dict[str, Any]], plain: Any) -> dict[str, float]:
    """Held-back figures with each case's own prompt in front: reliability and generality (every target token
    top-1, teacher-forced) and locality (the unrelated prompt's top-1 next token unchanged)."""
    import torch

    hits = {"rel": 0, "gen": 0, "loc": 0}
    with torch.no_grad():
        for at in range(0, len(cases), 8):
            chunk = cases[at:at + 8]
            _, _, logits, free, b = _losses(ctx, encoder, vecs[at:at + 8], chunk, plain[at:at + 8])
            right = logits.argmax(-1) == b.t_ids
            for i, key in enumerate(("rel", "gen")):
                for j in range(len(chunk)):
                    sel = b.t_rows == i * len(chunk) + j
                    hits[key] += bool(right[sel].all())
            hits["loc"] += int((free.argmax(-1) == plain[at:at + 8].argmax(-1)).sum())  # the pass above's rows
    n = max(1, len(cases))
    return {"heldout_reliability": round(hits["rel"] / n, 4), "heldout_generality": round(hits["gen"] / n, 4),
            "heldout_locality": round(hits["loc"] / n, 4)}


def train_encoder(ctx: Any, cases: Sequence[dict[str, str]], embedder: Any, *, k: int = 8, width: int = 512,
                  epochs: int = 3, batch: int = 8, lr: float = 1e-3, locality_weight: float = 1.0,
                  heldout: float = 0.1, minutes: float | None = None, seed: int = 0,
                  progress: Callable[[int, int], None] | None = None) -> tuple[Any, dict[str, Any]]:
    """Train a prompt encoder for ``ctx``'s model on ``cases`` (dicts with ``prompt``, ``target``, ``rephrase``,
    ``free``); returns it and its figures. The model's weights are never written."""
    import numpy as np
    import torch

    from ..errors import ConfigError
    from .recipe_encoder import PromptEncoder

    started = time.perf_counter()
    rows = _rows(ctx.backend, cases)
    if len(rows) < 4:
        raise ConfigError(f"{len(rows)} usable training cases for the RECIPE encoder (prompt, target, paraphrase, "
                          "unrelated prompt); need at least 4")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    n_held = max(1, int(len(rows) * heldout)) if heldout > 0 else 0
    held, train = [rows[i] for i in order[:n_held]], [rows[i] for i in order[n_held:]]
    dev = ctx.backend.device
    model = ctx.backend.model
    emb_w = model.get_input_embeddings().weight
    torch.manual_seed(seed)
    encoder = PromptEncoder(embedder.dim, ctx.layout.hidden_size, k=k, width=width,
                            scale=float(emb_w.detach().float().std())).to(dev)
    opt = torch.optim.Adam(encoder.parameters(), lr=lr)

    def vectors(part: list[dict[str, Any]]) -> Any:
        return torch.tensor(np.asarray(embedder.embed([c["statement"] for c in part])), device=dev, dtype=torch.float32)

    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    steps, total = 0, epochs * max(1, (len(train) + batch - 1) // batch)
    last = {"nll": float("nan"), "kl": float("nan")}
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        with ctx.stack.pristine(), ctx.backend.lock:
            v_train, v_held = vectors(train), vectors(held) if held else None
            plain_train = _plain_last(ctx, [c["free_ids"] for c in train])
            plain_held = _plain_last(ctx, [c["free_ids"] for c in held]) if held else None
            encoder.train()
            out_of_time = False
            for epoch in range(epochs):
                perm = rng.permutation(len(train))
                for at in range(0, len(train), batch):
                    idx = perm[at:at + batch].tolist()
                    with torch.enable_grad():
                        nll, kl, _, _, _ = _losses(ctx, encoder, v_train[idx], [train[i] for i in idx], plain_train[idx])
                        loss = nll + locality_weight * kl
                        opt.zero_grad()
                        loss.backward()
                    opt.step()
                    steps += 1
                    last = {"nll": round(float(nll.detach()), 4), "kl": round(float(kl.detach()), 4)}
                    if progress:
                        progress(steps, total)
                    if minutes is not None and time.perf_counter() - started > minutes * 60:
                        out_of_time = True
                        break
                logger.info("recipe encoder: epoch %d, step %d, target nll %.3f, locality kl %.3f", epoch + 1, steps,
                            last["nll"], last["kl"])
                if out_of_time:
                    break
            encoder.eval()
            figures = evaluate(ctx, encoder, v_held, held, plain_held) if held else {}
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(grads[n])
    meta = {"model": getattr(ctx.backend, "name", ""), "fingerprint": ctx.fingerprint, "hidden_size": ctx.layout.hidden_size,
            "k": k, "embedder": getattr(embedder, "name", ""), "n_train_cases": len(train), "n_heldout_cases": len(held),
            "epochs": epochs, "steps": steps, "lr": lr, "batch": batch, "locality_weight": locality_weight, "seed": seed,
            "device": str(dev), "final_nll": last["nll"], "final_kl": last["kl"],
            "train_seconds": round(time.perf_counter() - started, 1), **figures}
    logger.info("recipe encoder: %s", meta)
    return encoder, meta


def file_cases(path: Any, n_cases: int) -> tuple[list[dict[str, str]], str]:
    """Training cases of a CounterFact-shaped training file (evaluation splits refused) and its sha256."""
    from ..scope.sentinel_training import load_cases

    cases, digest = load_cases(path, n_cases)
    return [{"prompt": c["prompt"], "target": c["target"], "rephrase": c["rephrase"], "free": c["free"],
             "statement": c["edit"]} for c in cases], digest

