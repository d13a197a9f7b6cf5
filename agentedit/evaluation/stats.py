"""Uncertainty of the metrics: 95% bootstrap intervals over cases, and paired method-vs-method differences.

Cases are the unit that is sampled: a case with several probes (ZsRE's locality list, MQuAKE's three questions) is
resampled whole (a cluster bootstrap), so its correlated probes do not count as independent evidence. A metric over
a resample is the share of the resampled probes' scores, as :func:`~agentedit.evaluation.report.aggregate` computes
it over all of them (multi-hop: one 0/1 per case). Every draw comes from a :class:`numpy.random.Generator` seeded by
the report's seed, so a report is reproducible.

A paired difference compares two methods on the probes both answered, case by case: its interval is a paired
cluster bootstrap of the difference, its p-value a two-sided sign-flip permutation test (swapping the two methods'
scores within a case at random). A difference whose interval contains 0 is within noise.
"""

from __future__ import annotations

import hashlib
from typing import Any

METRICS = ("reliability", "generality", "locality", "portability", "multihop")
RESAMPLES = 2000
DEFAULT_SEED = 0


def counted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows a metric counts: all but the in-scope probes of cases a later case restated (``restated_later``)."""
    return [r for r in rows if not r.get("restated_later")]


def case_sums(rows: list[dict[str, Any]], kind: str) -> dict[str, tuple[float, int]]:
    """Per case, the sum of its probes' scores of ``kind`` and their number (multihop: solved or not, counted once)."""
    out: dict[str, tuple[float, int]] = {}
    mine = [r for r in counted(rows) if r["kind"] == kind]
    if kind == "multihop":
        solved: dict[str, bool] = {}
        for r in mine:
            key = r.get("group") or r["case_id"]
            solved[key] = solved.get(key, False) or r["score"] >= 1.0
        return {k: (float(v), 1) for k, v in solved.items()}
    for r in mine:
        s, n = out.get(r["case_id"], (0.0, 0))
        out[r["case_id"]] = (s + float(r["score"]), n + 1)
    return out


def interval(rows: list[dict[str, Any]], kind: str, *, seed: int = DEFAULT_SEED,
             resamples: int = RESAMPLES) -> list[float] | None:
    """The 95% percentile interval of metric ``kind`` under a cluster bootstrap of cases (None: no such probes)."""
    import numpy as np

    sums = case_sums(rows, kind)
    if not sums:
        return None
    s = np.array([v[0] for v in sums.values()])
    n = np.array([v[1] for v in sums.values()], dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(s), size=(resamples, len(s)))
    stats = s[idx].sum(axis=1) / n[idx].sum(axis=1)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def intervals(rows: list[dict[str, Any]], *, seed: int = DEFAULT_SEED) -> dict[str, list[float]]:
    out = {}
    for kind in METRICS:
        ci = interval(rows, kind, seed=seed)
        if ci is not None:
            out[kind] = ci
    return out


def _paired_sums(a: list[dict[str, Any]], b: list[dict[str, Any]], kind: str) -> tuple[list[float], list[float], list[int]]:
    """Per shared case, both methods' score sums over the probes both answered, and how many those are."""
    if kind == "multihop":
        sa, sb = case_sums(a, kind), case_sums(b, kind)
        keys = sorted(set(sa) & set(sb))
        return [sa[k][0] for k in keys], [sb[k][0] for k in keys], [1] * len(keys)
    key = lambda r: (r["case_id"], r["probe_idx"])  # noqa: E731
    mine_b = {key(r): float(r["score"]) for r in counted(b) if r["kind"] == kind}
    per: dict[str, list[float]] = {}
    for r in counted(a):
        if r["kind"] == kind and key(r) in mine_b:
            acc = per.setdefault(r["case_id"], [0.0, 0.0, 0])
            acc[0] += float(r["score"])
            acc[1] += mine_b[key(r)]
            acc[2] += 1
    cases = sorted(per)
    return [per[c][0] for c in cases], [per[c][1] for c in cases], [int(per[c][2]) for c in cases]


def paired(a: list[dict[str, Any]], b: list[dict[str, Any]], kind: str, *, seed: int = DEFAULT_SEED,
           resamples: int = RESAMPLES) -> dict[str, Any] | None:
    """Metric ``kind`` of rows ``a`` minus that of rows ``b`` on their shared probes: the difference, its 95% paired
    bootstrap interval, the sign-flip permutation p-value, the number of shared cases and whether it is within noise."""
    import numpy as np

    sa, sb, n = (np.array(x, dtype=float) for x in _paired_sums(a, b, kind))
    if not len(n):
        return None
    d = sa - sb
    total = n.sum()
    diff = float(d.sum() / total)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(resamples, len(d)))
    boots = d[idx].sum(axis=1) / n[idx].sum(axis=1)
    lo, hi = (float(x) for x in np.percentile(boots, [2.5, 97.5]))
    signs = rng.choice(np.array([-1.0, 1.0]), size=(resamples, len(d)))
    perm = np.abs((signs * d).sum(axis=1) / total)
    p = float((1 + np.sum(perm >= abs(diff) - 1e-12)) / (resamples + 1))
    return {"diff": round(diff, 4), "ci": [round(lo, 4), round(hi, 4)], "p": round(p, 4), "n_cases": int(len(d)),
            "within_noise": bool(lo <= 0.0 <= hi)}


def cases_digest(case_ids: list[str]) -> str:
    """A short hash of a sorted list of case ids: two runs with the same digest probed the same cases."""
    return hashlib.sha256("\n".join(sorted(case_ids)).encode("utf-8")).hexdigest()[:16]
