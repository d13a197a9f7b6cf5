"""Training of the learned scope checker (:mod:`agentedit.scope.trained`): data building and the training run.

Training data come from ``counterfact-train.json`` only, never an evaluation
set (:func:`training_pairs`):

- relations are recovered without relation ids: each case's prompt gives a
  template (subject masked), and its locality prompt is another subject under
  the same relation, usually through another template; matching the locality
  prompt against the known templates links the two, and linked templates form
  one relation (union-find);
- positives: a case's paraphrase clause and every template of its relation,
  paired with each template of that relation;
- negatives: templates of other relations, mined by retrieval (the nearest ones
  by embedding similarity, the hard cases) plus a random one.

The cross-encoder starts from the offline all-MiniLM-L6-v2 weights. The threshold
is calibrated on a held-back slice of the training cases (recall at a target
specificity), and the artefact (weights, tokenizer, ``scope_model.json`` with the
threshold and the training figures) lives in the store's folder under
``scope-model/``: ``agentedit train-scope`` writes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ScopeError
from ..memory.embed import Embedder, _default_model_dir
from .calibration import auc, choose_threshold
from .text import MASK, find_subject, mask_subject, query_relation
from .trained import META_FILE, PairScorer, TrainingReport

logger = logging.getLogger(__name__)


# -- training data ----------------------------------------------------------------------------------------
def _template_regex(template: str) -> re.Pattern[str] | None:
    """A regex matching ``template`` (subject masked as ``X``) with any subject in the slot."""
    if template.count(MASK) != 1 or not re.search(rf"(?<!\w){MASK}(?!\w)", template):
        return None
    before, after = re.split(rf"(?<!\w){MASK}(?!\w)", template, maxsplit=1)
    if len(before.strip()) + len(after.strip()) < 4:
        return None
    return re.compile("^" + re.escape(before) + r"(.+?)" + re.escape(after) + "$", re.IGNORECASE)


_BE = r"(is|was|are|were)"
_ARTICLE_TAIL = re.compile(r"\s+(?:a|an|the)$", re.IGNORECASE)
_APPOSITIVE = re.compile(rf"^{MASK},\s+(?:(which|who|that|whose)\s+)?(.+)$", re.IGNORECASE)


def _lemma(verb: str) -> str | None:
    """The base form of a third-person present verb ("speaks" -> "speak"); None for anything else."""
    low = verb.lower()
    if low in ("is", "was", "has", "does", "as", "its", "this", "thus") or not low.endswith("s") or low.endswith("ss"):
        return "have" if low == "has" else None
    if low.endswith("ies") and len(low) > 4:
        return verb[:-3] + "y"
    if re.search(r"(?:ch|sh|x|ss|z)es$", low):
        return verb[:-2]
    return verb[:-1]


def question_forms(template: str) -> list[str]:
    """Question forms of a completion template (subject masked as ``X``), made by rules.

    The training file's prompts are completions ("X is located in"), while users (and ZsRE) ask
    questions ("What is X located in?", "What is the capital of X?"); these forms teach the
    cross-encoder that both ask the same relation. No evaluation data is involved.
    """
    t = template.strip().rstrip(",:")
    if "?" in t:  # "What is the twin city of X? It is": the question is already there
        head = t.split("?", 1)[0].strip()
        return [head + "?"] if MASK in head else []
    m = _APPOSITIVE.match(t)
    if m and m.group(1) and m.group(1).lower() == "whose":  # "X, whose headquarters are in"
        t = f"{MASK}'s {m.group(2)}"
    elif m and m.group(1):  # "X, which is located in" / "X, who plays" -> "X is located in" / "X plays"
        t = f"{MASK} {m.group(2)}"
    elif m and not re.match(rf"{_BE}\b", m.group(2), re.IGNORECASE):  # "X, a citizen of" -> "X is a citizen of"
        t = f"{MASK} is {m.group(2)}"
    elif m:
        t = f"{MASK} {m.group(2)}"
    t = _ARTICLE_TAIL.sub("", t).strip()
    if t.lower() in (f"{MASK} is".lower(), MASK.lower()):
        return []
    forms: list[str] = []
    if m := re.match(rf"^The (.+) of {MASK} {_BE}(.*)$", t, re.IGNORECASE):
        rest = m.group(3).rstrip()
        forms.append(f"What {m.group(2)} the {m.group(1)} of {MASK}{rest}?")
        if not rest:
            forms.append(f"What {m.group(2)} {MASK}'s {m.group(1)}?")
    elif m := re.match(rf"^{MASK}'s (.+?) {_BE}(.*)$", t, re.IGNORECASE):
        rest = m.group(3).rstrip()
        forms.append(f"What {m.group(2)} {MASK}'s {m.group(1)}{rest}?")
        if not rest:
            forms.append(f"What {m.group(2)} the {m.group(1)} of {MASK}?")
    elif m := re.match(rf"^{MASK} {_BE} (.+)$", t, re.IGNORECASE):
        forms.append(f"What {m.group(1)} {MASK} {m.group(2)}?")
    elif (m := re.match(rf"^{MASK} (\w+)(.*)$", t)) and (base := _lemma(m.group(1))):
        forms.append(f"What does {MASK} {base}{m.group(2)}?")
    if not forms and re.search(rf"(?<!\w){MASK}(?=[\s,']|$)", t):
        forms.append(f"{t} what?")  # past tenses and the rest: an echo question
    return forms


@dataclass
class _Case:
    template: str
    rephrase: str | None
    relation: int = -1


def _usable(cases: Sequence[Any]) -> list[dict[str, str]]:
    need = ("prompt", "subject", "rephrase_prompt", "locality_prompt")
    return [c for c in cases if isinstance(c, dict) and all(isinstance(c.get(k), str) and c[k].strip() for k in need)]


def load_training_cases(path: Path) -> tuple[list[dict[str, str]], bytes]:
    """The usable CounterFact-shaped cases of the training file at ``path`` and its bytes (for the report's sha256);
    a clear :class:`ScopeError` for a missing file, bad JSON or too few cases."""
    if not path.exists():
        raise ScopeError(f"training data {path} not found; pass counterfact-train.json (e.g. ../shared/datasets/counterfact/counterfact-train.json)")
    raw = path.read_bytes()
    try:
        cases = _usable(json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScopeError(f"training data {path} is not valid JSON: {exc}") from None
    if len(cases) < 50:
        raise ScopeError(f"training data {path} has {len(cases)} usable CounterFact-shaped cases; need at least 50")
    return cases, raw


def relation_clusters(cases: Sequence[dict[str, str]]) -> list[_Case]:
    """Each case's template and paraphrase clause, with relation ids recovered by union-find (see module doc)."""
    out: list[_Case] = []
    localities: list[str] = []
    for c in cases:
        if not find_subject(c["prompt"], [c["subject"]]):
            continue
        rephrase = query_relation(c["rephrase_prompt"], c["subject"]) if find_subject(c["rephrase_prompt"], [c["subject"]]) else None
        out.append(_Case(mask_subject(c["prompt"], c["subject"]), rephrase))
        localities.append(c["locality_prompt"].strip())
    templates = sorted({c.template for c in out})
    index = {t: i for i, t in enumerate(templates)}
    parent = list(range(len(templates)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Longest templates first, so "X is a native speaker of" wins over "X is a".
    regexes = [(t, rx) for t in sorted(templates, key=len, reverse=True) if (rx := _template_regex(t)) is not None]
    for case, local in zip(out, localities):
        for t, rx in regexes:
            if rx.match(local):
                a, b = find(index[case.template]), find(index[t])
                if a != b:
                    parent[a] = b
                break
    for case in out:
        case.relation = find(index[case.template])
    return out


def training_pairs(cases: Sequence[_Case], embedder: Embedder, *, rng: random.Random, hard: int = 3,
                   per_case_positives: int = 2, questions: bool = True,
                   question_share: float = 0.25) -> list[tuple[str, str, int]]:
    """(query clause, edit relation, label) pairs: positives within a relation, mined negatives across relations.

    With ``questions``, each template's :func:`question_forms` join its relation, on both sides of
    the pairs: as queries and as edit relations (a user's edit may well be stored as a question).
    """
    templates_of: dict[int, list[str]] = {}
    relation_of: dict[str, int] = {}
    for c in cases:
        lst = templates_of.setdefault(c.relation, [])
        for t in [c.template] + (question_forms(c.template) if questions else []):
            if t not in lst and t not in relation_of:
                lst.append(t)
                relation_of[t] = c.relation
    all_templates = sorted(relation_of)
    vecs = embedder.embed(all_templates)
    pairs: list[tuple[str, str, int]] = []
    first_of: dict[str, _Case] = {}
    for c in cases:
        for t in templates_of[c.relation]:
            first_of.setdefault(t, c)
    queries = [(c.rephrase, c) for c in cases if c.rephrase] + [(t, c) for t, c in first_of.items()]
    if questions:  # a quarter of the cases are also asked as a question of their own template
        queries += [(rng.choice(forms), c) for c in cases
                    if (forms := question_forms(c.template)) and rng.random() < question_share]
    qvecs = embedder.embed([q for q, _ in queries])
    sims = qvecs @ vecs.T
    for (q, c), row in zip(queries, sims):
        same = templates_of[c.relation]
        for t in rng.sample(same, min(per_case_positives, len(same))):
            pairs.append((q, t, 1))
        order = np.argsort(-row)
        mined = [all_templates[j] for j in order[: 8 * hard + 8] if relation_of[all_templates[j]] != c.relation][:hard]
        for t in mined:
            pairs.append((q, t, 0))
        other = all_templates[rng.randrange(len(all_templates))]
        if relation_of[other] != c.relation:
            pairs.append((q, other, 0))
    rng.shuffle(pairs)
    return pairs


@dataclass
class Split:
    """A training file read for a trainer: its bytes (for the report's hash), the seeded generator, the progress
    callback, and its cases with relations recovered, split into training and held-back slices."""

    raw: bytes
    rng: random.Random
    say: Callable[[str], None]
    train: list[_Case]
    held: list[_Case]


def split_training(path: Path, *, heldout: float, seed: int, threads: int | None,
                   progress: Callable[[str], None] | None) -> Split:
    """Read and check the training file, seed Python's and torch's generators, recover the relations and split the
    cases (a ``heldout`` share held back for calibration): the start both trainers share."""
    import torch

    cases, raw = load_training_cases(path)
    if not 0.0 < heldout < 0.5:
        raise ScopeError(f"heldout must be in (0, 0.5), got {heldout}")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    say = progress or (lambda _m: None)
    say(f"recovering relations from {len(cases)} cases")
    structured = relation_clusters(cases)
    order = list(range(len(structured)))
    rng.shuffle(order)
    cut = int(len(order) * (1 - heldout))
    return Split(raw, rng, say, [structured[i] for i in order[:cut]], [structured[i] for i in order[cut:]])


def train_scope_model(data: str | Path, out_dir: str | Path, embedder: Embedder, *, minutes: float = 15.0,
                      max_epochs: int = 2, batch_size: int = 32, lr: float = 4e-5, heldout: float = 0.1,
                      target_specificity: float = 0.98, seed: int = 0, threads: int | None = None,
                      progress: Callable[[str], None] | None = None) -> TrainingReport:
    """Train the cross-encoder on a CounterFact-shaped training file and save it in ``out_dir``.

    Stops at ``minutes`` of training or ``max_epochs``, whichever comes first;
    the folder is written only when training and calibration succeed.
    """
    import torch

    path = Path(data)
    split = split_training(path, heldout=heldout, seed=seed, threads=threads, progress=progress)
    raw, rng, say, train_cases, held_cases = split.raw, split.rng, split.say, split.train, split.held
    n_relations = len({c.relation for c in train_cases + held_cases})
    say("mining hard negatives")
    train = training_pairs(train_cases, embedder, rng=rng)
    held = training_pairs(held_cases, embedder, rng=random.Random(seed + 1), per_case_positives=1)
    base = _default_model_dir() if embedder.model_path is None else embedder.model_path
    scorer = PairScorer(base, new_head=True)
    model = scorer.model
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total = steps_per_epoch * max_epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100) * max(0.05, 1 - s / total))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    started, step, deadline = time.time(), 0, time.time() + minutes * 60
    say(f"training on {len(train)} pairs ({n_relations} relations), up to {minutes:g} min")
    done = False
    for epoch in range(max_epochs):
        if epoch:
            rng.shuffle(train)
        for i in range(0, len(train), batch_size):
            chunk = train[i:i + batch_size]
            enc = scorer._batch([q for q, _, _ in chunk], [r for _, r, _ in chunk])
            labels = torch.tensor([float(y) for _, _, y in chunk])
            loss = loss_fn(model(**enc).logits[:, 0], labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 50 == 0:
                say(f"step {step}/{total}, loss {loss.item():.3f}, {time.time() - started:.0f} s")
            if time.time() > deadline:
                done = True
                break
        if done:
            break
    train_seconds = time.time() - started
    model.eval()
    say(f"calibrating on {len(held)} held-back pairs")
    probs = scorer.probabilities([q for q, _, _ in held], [r for _, r, _ in held])
    labels = np.asarray([y for _, _, y in held])
    pos, neg = probs[labels == 1], probs[labels == 0]
    report = TrainingReport(
        **heldout_figures(pos, neg, target_specificity), n_train_pairs=len(train), n_heldout_pairs=len(held),
        n_relations=n_relations, steps=step, epochs=round(step / steps_per_epoch, 3), train_seconds=round(train_seconds, 1),
        data=path.name, data_sha256=hashlib.sha256(raw).hexdigest(), base_model=embedder.name, seed=seed)
    write_model_dir(Path(out_dir), scorer.save, report)
    return report


def heldout_figures(pos: np.ndarray, neg: np.ndarray, target_specificity: float) -> dict[str, float]:
    """The threshold chosen on held-back scores (recall at ``target_specificity``) and what it gives there: the
    :class:`TrainingReport` fields both trainers fill the same way."""
    threshold = choose_threshold(pos, neg, "recall@specificity", target_specificity)
    return {"threshold": round(float(threshold), 6), "target_specificity": target_specificity,
            "heldout_recall": round(float(np.mean(pos >= threshold)), 4),
            "heldout_specificity": round(float(np.mean(neg < threshold)), 4), "heldout_auc": round(auc(pos, neg), 4)}


def write_model_dir(out: Path, save: Callable[[Path], None], report: TrainingReport) -> None:
    """Write a trained model (``save`` fills a folder) and its report to ``out``, replacing what was there only once
    the new folder is complete: a failed save leaves the previous model in place."""
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        save(tmp)
        (tmp / META_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    logger.info("trained scope model saved to %s: %s", out, report)


__all__ = ["Split", "heldout_figures", "load_training_cases", "question_forms", "relation_clusters", "split_training",
           "train_scope_model", "training_pairs", "write_model_dir"]
