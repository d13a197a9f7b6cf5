"""Training the relation encoder of the ``trained`` checker (``agentedit train-scope --kind encoder``).

The relation checkers compare a query's clause with an edit's relation, both with the subject masked, by the cosine
of their MiniLM sentence vectors. MiniLM was trained to match paraphrases and answers to questions, not a question
("Which language did X grow up speaking?") to a completion template ("X speaks"), and the same-subject questions about
another relation often score as high as the right ones. This module tunes a copy of the encoder on texts built from
the training file only (never an evaluation set):

- relations are recovered from ``counterfact-train.json`` without relation ids
  (:func:`~agentedit.scope.training.relation_clusters`);
- each relation's texts are its completion templates, the cases' paraphrase clauses, the question forms of the
  templates (:func:`~agentedit.scope.training.question_forms`) and those questions inside generic chat framings
  ("Can you tell me ...", "Quick question: ...") that say nothing about any relation;
- the loss is supervised contrastive (Khosla et al., 2020): texts of one relation are pulled together, texts of the
  other relations in the batch pushed apart; a second term keeps every vector near the untuned encoder's, so the
  relations the file never shows keep the geometry MiniLM learned from a billion pairs.

The threshold is calibrated on a held-back slice of the training cases (recall at a target specificity; each
held-back query against each other relation through that relation's closest template), and the folder (a
sentence-transformers model plus ``scope_model.json`` with ``kind: "encoder"``) replaces the store's ``scope-model/``
only once it is complete.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ScopeError
from ..memory.embed import Embedder, _default_model_dir
from .trained import TrainingReport
from .training import _Case, heldout_figures, question_forms, split_training, write_model_dir

logger = logging.getLogger(__name__)

# Chat framings around a question: generic, about no relation, so the encoder learns to look past them.
FRAMINGS = ("Can you tell me {}", "Do you know {}", "I'd like to know {}", "Quick question: {}", "Tell me {}",
            "{} Thanks.", "Any idea {}", "Hey, {}", "I was wondering {}", "Remind me, {}")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def relation_texts(cases: Sequence[_Case], rng: random.Random, *, framed: bool = True) -> dict[int, list[str]]:
    """Relation id -> its texts (subject masked): templates, paraphrase clauses, question forms, framed questions."""
    out: dict[int, set[str]] = {}
    for c in cases:
        texts = out.setdefault(c.relation, set())
        texts.add(c.template)
        if c.rephrase:
            texts.add(c.rephrase)
        for form in question_forms(c.template):
            texts.add(form)
            if framed:
                texts.add(rng.choice(FRAMINGS).format(_lower_first(form)))
    return {rel: sorted(texts) for rel, texts in out.items()}


def supcon_loss(z: Any, labels: Any, temperature: float) -> Any:
    """Supervised contrastive loss of unit vectors ``z`` whose rows share a relation when ``labels`` are equal."""
    import torch

    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = (z @ z.T / temperature).masked_fill(eye, -1e9)
    positive = (labels[:, None] == labels[None, :]) & ~eye
    log_p = logits.log_softmax(dim=1)
    per_row = -(log_p * positive).sum(1) / positive.sum(1).clamp(min=1)
    return per_row[positive.any(1)].mean()


def _held_scores(encode: Callable[[list[str]], np.ndarray], held: dict[int, list[str]],
                 templates: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """In-scope and out-of-scope scores of the held-back query texts: the cosine with each template of their own
    relation, and with each other relation through its closest template (an edit of that relation may be worded any
    of its ways, so the closest wording is the one to stay under; every template one by one would set the threshold by
    the many easy pairs and accept near relations on user questions)."""
    queries = [(t, rel) for rel, texts in held.items() for t in texts if t not in templates]
    names = sorted(templates)
    sims = encode([q for q, _ in queries]) @ encode(names).T
    of = np.array([templates[n] for n in names])
    own = np.array([rel for _, rel in queries])
    pos = sims[of[None, :] == own[:, None]]
    negs = [sims[:, of == rel].max(axis=1)[own != rel] for rel in sorted(set(of.tolist()))]
    return pos, np.concatenate(negs)


def train_relation_encoder(data: str | Path, out_dir: str | Path, embedder: Embedder, *, steps: int = 400,
                           minutes: float = 15.0, lr: float = 3e-5, anchor: float = 1.0, temperature: float = 0.05,
                           relations_per_batch: int = 16, texts_per_relation: int = 4, heldout: float = 0.1,
                           target_specificity: float = 0.98, seed: int = 0, threads: int | None = None,
                           progress: Callable[[str], None] | None = None) -> TrainingReport:
    """Tune the relation encoder on a CounterFact-shaped training file and save it in ``out_dir`` (see the module doc).

    Stops after ``steps`` batches or ``minutes``, whichever comes first.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    path = Path(data)
    if steps < 1 or minutes <= 0:
        raise ScopeError(f"steps and minutes must be positive, got {steps} and {minutes}")
    split = split_training(path, heldout=heldout, seed=seed, threads=threads, progress=progress)
    rng, say = split.rng, split.say
    train = relation_texts(split.train, rng)
    held = relation_texts(split.held, random.Random(seed + 1))
    usable = [rel for rel, texts in train.items() if len(texts) >= 2]
    if len(usable) < 2:
        raise ScopeError(f"training data {path} gives {len(usable)} relation(s) with two or more texts; need at least 2")
    base = _default_model_dir() if embedder.model_path is None else embedder.model_path
    model = SentenceTransformer(base, device="cpu")
    teacher = SentenceTransformer(base, device="cpu").eval()

    def encode(m: Any, texts: list[str]) -> Any:
        features = (m.preprocess if hasattr(m, "preprocess") else m.tokenize)(texts)  # tokenize: sentence-transformers < 6
        return torch.nn.functional.normalize(m(features)["sentence_embedding"], dim=-1)

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    started, deadline, step = time.time(), time.time() + minutes * 60, 0
    say(f"tuning on {sum(len(train[r]) for r in usable)} texts of {len(usable)} relations, up to {steps} steps")
    while step < steps and time.time() < deadline:
        batch: list[str] = []
        labels: list[int] = []
        for i, rel in enumerate(rng.sample(usable, min(relations_per_batch, len(usable)))):
            picked = rng.sample(train[rel], min(texts_per_relation, len(train[rel])))
            batch += picked
            labels += [i] * len(picked)
        z = encode(model, batch)
        loss = supcon_loss(z, torch.tensor(labels), temperature)
        if anchor > 0:
            with torch.no_grad():
                fixed = encode(teacher, batch)
            loss = loss + anchor * ((z - fixed) ** 2).sum(1).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        step += 1
        if step % 50 == 0:
            say(f"step {step}/{steps}, loss {loss.item():.3f}, {time.time() - started:.0f} s")
    train_seconds = time.time() - started
    model.eval()
    templates = {c.template: c.relation for c in split.train + split.held}

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False))

    pos, neg = _held_scores(embed, held, templates)
    say(f"calibrating on {len(pos)} + {len(neg)} held-back pairs")
    report = TrainingReport(
        **heldout_figures(pos, neg, target_specificity), n_train_pairs=sum(len(train[r]) for r in usable),
        n_heldout_pairs=len(pos) + len(neg), n_relations=len(usable), steps=step, epochs=0.0,
        train_seconds=round(train_seconds, 1), data=path.name, data_sha256=hashlib.sha256(split.raw).hexdigest(),
        base_model=embedder.name, seed=seed, kind="encoder")
    write_model_dir(Path(out_dir), lambda folder: model.save(str(folder)), report)
    return report


__all__ = ["FRAMINGS", "relation_texts", "supcon_loss", "train_relation_encoder"]
