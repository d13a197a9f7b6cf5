"""Training RECIPE's knowledge sentinel (``agentedit train-recipe``) on a CounterFact-shaped training file.

Each training case gives an edit (its statement, as the memory writes it), queries it bears on (its prompt
and paraphrase) and a query it does not (its locality prompt: another subject). A batch's edits and the
sentinel are the choices for each query, RECIPE's contrastive objective: a query in scope should pick its
own edit, one out of scope the sentinel (cross-entropy over cosine similarities at a temperature). A
slice of the cases is held back and reports recall (own edit beats the sentinel) and specificity (no edit
beats it) on unseen cases. Runs on a GPU when there is one, on the CPU otherwise (a few minutes for
2,000 cases on 2 cores, most of it embedding the texts).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError
from ..records import make_statement
from .sentinel import SentinelModel

logger = logging.getLogger(__name__)

# Evaluation splits (see shared/datasets/README.md): never trained on.
EVALUATION_FILES = ("counterfact-edit.json", "ZsRE-test-all.json", "train_cf.json", "counterfact_portability_gpt4.json",
                    "MQuAKE-hard-dev.json", "trivia_qa_test.json")


def load_cases(path: str | Path, n_cases: int) -> tuple[list[dict[str, str]], str]:
    """``(cases, sha256)`` of a CounterFact-shaped training file; evaluation splits are refused."""
    path = Path(path)
    if path.name in EVALUATION_FILES:
        raise ConfigError(f"{path.name} is an evaluation split; train the sentinel on a training file such as "
                          "counterfact/counterfact-train.json")
    if not path.is_file():
        raise ConfigError(f"training file {path} not found; pass --data with a CounterFact-shaped JSON file")
    raw = path.read_bytes()
    try:
        records = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON ({exc}); pass a CounterFact-shaped JSON list") from exc
    cases = []
    for r in records if isinstance(records, list) else []:
        if all(isinstance(r.get(k), str) and r.get(k) for k in ("prompt", "target_new", "locality_prompt")):
            cases.append({"edit": make_statement(r["prompt"], r["target_new"]), "prompt": r["prompt"],
                          "target": r["target_new"],
                          "rephrase": r.get("rephrase_prompt") or r["prompt"], "free": r["locality_prompt"]})
    if len(cases) < 20:
        raise ConfigError(f"{path} holds {len(cases)} usable cases (prompt, target_new, locality_prompt); need at least 20")
    return cases[:n_cases], hashlib.sha256(raw).hexdigest()


def train_sentinel(data: str | Path, embedder: Any, *, n_cases: int = 2000, epochs: int = 20, batch: int = 64,
                   lr: float = 1e-3, temperature: float = 0.05, heldout: float = 0.1, seed: int = 0,
                   progress: Callable[[int, int], None] | None = None) -> SentinelModel:
    """Train the maps and the sentinel; the returned model's ``meta`` holds the held-back figures."""
    import torch
    import torch.nn.functional as F

    started = time.perf_counter()
    cases, digest = load_cases(data, n_cases)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(cases))
    n_held = max(10, int(len(cases) * heldout))
    held, train = [cases[i] for i in order[:n_held]], [cases[i] for i in order[n_held:]]
    texts = sorted({c[k] for c in cases for k in ("edit", "prompt", "rephrase", "free")})
    vecs = dict(zip(texts, embedder.embed(texts)))
    device = "cuda" if torch.cuda.is_available() else "cpu"

    def tensor(rows: list[dict[str, str]], key: str) -> Any:
        return torch.tensor(np.stack([vecs[r[key]] for r in rows]), device=device)

    dim = len(next(iter(vecs.values())))
    torch.manual_seed(seed)
    wq = torch.zeros(dim, dim, device=device, requires_grad=True)
    we = torch.zeros(dim, dim, device=device, requires_grad=True)
    sentinel = torch.randn(dim, device=device).mul_(0.01).requires_grad_(True)
    opt = torch.optim.Adam([wq, we, sentinel], lr=lr)

    def mapped(q: Any, e: Any) -> tuple[Any, Any, Any]:
        return (F.normalize(q + q @ wq.T, dim=-1), F.normalize(e + e @ we.T, dim=-1), F.normalize(sentinel, dim=0))

    steps = 0
    total = epochs * max(1, (len(train) + batch - 1) // batch)
    for epoch in range(epochs):
        perm = rng.permutation(len(train))
        for start in range(0, len(train), batch):
            rows = [train[i] for i in perm[start:start + batch]]
            n = len(rows)
            e = tensor(rows, "edit")
            q = torch.cat([tensor(rows, "prompt"), tensor(rows, "rephrase"), tensor(rows, "free")])
            qm, em, s = mapped(q, e)
            logits = torch.cat([qm @ em.T, (qm @ s)[:, None]], dim=1) / temperature  # the sentinel is choice n
            own = torch.arange(n, device=device)
            target = torch.cat([own, own, torch.full((n,), n, device=device)])
            loss = F.cross_entropy(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if progress:
                progress(steps, total)
    with torch.no_grad():
        model = SentinelModel(wq.cpu().numpy(), we.cpu().numpy(), sentinel.cpu().numpy(), {})
    figures = evaluate(model, held, vecs)
    model.meta = {"embedder": getattr(embedder, "name", ""), "data": str(data), "data_sha256": digest,
                  "n_train_cases": len(train), "n_heldout_cases": len(held), "epochs": epochs, "steps": steps,
                  "temperature": temperature, "lr": lr, "seed": seed, "device": device,
                  "train_seconds": round(time.perf_counter() - started, 1), **figures}
    logger.info("knowledge sentinel: %s", model.meta)
    return model


def evaluate(model: SentinelModel, cases: list[dict[str, str]], vecs: dict[str, np.ndarray]) -> dict[str, float]:
    """Held-back figures with every held-back edit a candidate: recall (the query's own edit beats the sentinel, for
    prompts and paraphrases) and specificity (no edit beats it, for locality prompts)."""
    edits = model.edits(np.stack([vecs[c["edit"]] for c in cases]))
    s = model._unit(model.sentinel)
    hit = miss = 0
    for key in ("prompt", "rephrase"):
        q = model.queries(np.stack([vecs[c[key]] for c in cases]))
        hit += int(((q * edits).sum(-1) > q @ s).sum())
    q = model.queries(np.stack([vecs[c["free"]] for c in cases]))
    miss = int(((q @ edits.T).max(-1) > q @ s).sum())
    return {"heldout_recall": round(hit / (2 * len(cases)), 4), "heldout_specificity": round(1 - miss / len(cases), 4)}
