"""Evaluation protocols by name: what a published setup measures, so that figures are compared only with figures
measured the same way.

Each :class:`EvalProtocol` names its scoring (teacher-forced token accuracy or generation match), its locality
definition, its edit regime (``lifelong``: every case's edits in memory at once; ``single``: one case's edits at a
time, retracted after its probes) and its metric definitions. ``agentedit eval --protocol NAME`` picks one; every
report prints it, and :func:`check_comparable` refuses to put runs of different protocols in one table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ConfigError
from ..registry import Registry

GEN_LOCALITY = "whole answer: the normalised generated answer equals the unedited model's"
TF_LOCALITY = "per token: share of the probe's target tokens whose top-1 prediction equals the unedited model's"
METRIC_TEXT = {
    "reliability": "the edit's own prompt answered with the new target",
    "generality": "a paraphrase of the edit's prompt answered with the new target",
    "locality": "an out-of-scope probe answered as the unedited model answers it",
    "portability": "a question that follows from the edit (reasoning, alias, one hop) answered with its new answer",
    "multihop": "share of cases with any of its questions answered with the new answer or an alias",
}


@dataclass(frozen=True)
class EvalProtocol:
    """A named evaluation setup. ``scoring`` None: the run chooses (the project's own protocols)."""

    name: str
    title: str
    regime: str  # lifelong | single
    scoring: str | None
    batch: str
    source: str = ""
    metrics: dict[str, str] = field(default_factory=lambda: dict(METRIC_TEXT))
    notes: str = ""

    def locality(self, scoring: str) -> str:
        return TF_LOCALITY if scoring == "teacher-forced" else GEN_LOCALITY

    def resolve_scoring(self, scoring: str | None) -> str:
        """The scoring a run under this protocol uses; a fixed protocol refuses another."""
        if self.scoring is None:
            return scoring or "generation-match"
        if scoring not in (None, self.scoring):
            raise ConfigError(f"protocol {self.name} scores {self.scoring}; drop --scoring {scoring} or choose the "
                              f"lifelong or single protocol, which take either scoring")
        return self.scoring

    def describe(self, scoring: str) -> dict[str, Any]:
        """What a report records about the protocol of a run scored with ``scoring``."""
        out = asdict(self)
        out.update(scoring=scoring, locality=self.locality(scoring))
        return out


PROTOCOLS: Registry[EvalProtocol] = Registry("protocol", "or register one with PROTOCOLS.add(name, EvalProtocol(...))")
PROTOCOLS.add("lifelong", EvalProtocol(
    "lifelong", "agentedit lifelong memory", "lifelong", None,
    "every case's edits written before any probe (the memory holds the whole dataset)",
    notes="the project's headline setting; locality follows the chosen scoring"))
PROTOCOLS.add("single", EvalProtocol(
    "single", "agentedit single edit", "single", None,
    "one case's edits in, its probes, its edits retracted", notes="locality follows the chosen scoring"))
PROTOCOLS.add("easyedit-knowedit", EvalProtocol(
    "easyedit-knowedit", "EasyEdit KnowEdit", "single", "teacher-forced",
    "one edit at a time, the model restored after each (sequential_edit=False)",
    source="zjunlp/EasyEdit, KnowEdit benchmark (Zhang et al. 2024)",
    metrics={**METRIC_TEXT, "reliability": "token accuracy of the new target after the edit prompt (Edit Succ.)",
             "portability": "token accuracy of the portability answer", "locality": TF_LOCALITY}))
PROTOCOLS.add("rome-counterfact", EvalProtocol(
    "rome-counterfact", "ROME/MEMIT CounterFact", "single", "teacher-forced",
    "one requested rewrite at a time, the weights restored after each",
    source="kmeng01/rome (Meng et al. 2022), memit (Meng et al. 2023)",
    metrics={**METRIC_TEXT, "reliability": "efficacy, as token accuracy of target_new after the rewrite prompt",
             "generality": "paraphrase prompts, token accuracy of target_new",
             "locality": "neighbourhood prompts, per-token agreement with the unedited model"},
    notes="ROME's probability comparisons (ES/PS/NS: p(new) > p(true)) are approximated by top-1 token accuracy"))
PROTOCOLS.add("wise-lifelong", EvalProtocol(
    "wise-lifelong", "WISE lifelong editing", "lifelong", "teacher-forced",
    "T sequential edits (the whole dataset) before evaluation, no reset between edits",
    source="zjunlp/EasyEdit WISE (Wang et al. 2024)",
    metrics={**METRIC_TEXT, "reliability": "Rel.: token accuracy of each edit after all T edits",
             "generality": "Gen.: token accuracy on rephrased prompts after all T edits", "locality": TF_LOCALITY}))
PROTOCOLS.add("mquake-multihop", EvalProtocol(
    "mquake-multihop", "MQuAKE multi-hop", "lifelong", "generation-match",
    "every case's edits in memory together (MQuAKE's edit batches), then the case's questions",
    source="princeton-nlp/MQuAKE (Zhong et al. 2023)",
    metrics={"multihop": "multi-hop accuracy: a case counts when any of its questions is answered with new_answer "
                         "or an alias (case-insensitive)", "portability": METRIC_TEXT["portability"]}))


def get_protocol(name: str) -> EvalProtocol:
    return PROTOCOLS.get(name)


def protocol_of(report: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The protocol a report was measured under and whether it was inferred: runs made before protocols were recorded
    hold only the regime name (lifelong/single) and the scoring, which name the protocol they used."""
    if isinstance(report.get("protocol_detail"), dict):
        return report["protocol_detail"], bool(report.get("protocol_inferred"))
    scoring = report.get("scoring") or "generation-match"
    return get_protocol(report.get("protocol") or "lifelong").describe(scoring), True


def check_comparable(runs: dict[str, dict[str, Any]]) -> None:
    """Refuse to put figures measured under different protocols (or scorings) in one table."""
    seen = {label: (p["name"], p["scoring"]) for label, (p, _) in ((k, protocol_of(r)) for k, r in runs.items())}
    if len(set(seen.values())) > 1:
        listing = "; ".join(f"{label}: {name}, {scoring}" for label, (name, scoring) in seen.items())
        raise ConfigError(f"these runs were measured under different protocols and cannot share a table ({listing}); "
                          "compare runs of one protocol and scoring")
